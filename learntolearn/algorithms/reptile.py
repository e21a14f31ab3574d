"""Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018).

For each task, train from the current initialisation ``theta`` with ``inner_steps`` SGD steps on
the support set to get ``theta~``; then move ``theta`` towards the mean of the ``theta~`` (Algorithm 2,
"batched"; Algorithm 1, "serial", is a batch of one task). This fits the shared interface as a
surrogate loss, ``0.5 * mean_tasks ||theta - stopgrad(theta~)||^2``, whose gradient is exactly
``theta - mean theta~``: with plain SGD and learning rate ``epsilon`` as the outer optimiser the step
is the paper's ``theta <- theta + epsilon * (mean theta~ - theta)``. At test time the model is
fine-tuned on the support set for ``test_inner_steps`` steps. BatchNorm uses the statistics of the
current batch (the paper's transductive setting). The paper's inner optimiser on Omniglot is Adam;
here it is SGD. With ``inner_batch`` each inner step sees a minibatch of that many support examples,
drawn in shuffled passes over the support set (the paper's Omniglot setting: 10-shot training tasks,
5 steps of 10, so each step sees a fifth of the task); a support set no larger than ``inner_batch`` is
used whole, as at 1-shot test time.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, MetaLoss, accuracy, check_query
from learntolearn.algorithms.inner import Params, sgd_inner_loop
from learntolearn.algorithms.maml import MAML, inner_options, linear_head
from learntolearn.types import Task


@ALGORITHMS.register("reptile")
class Reptile(MAML):
    """Reptile over any ``nn.Module``; shares MAML's functional inner loop (always first order)."""

    def __init__(self, model: nn.Module, *, inner_batch: int = 0, **options) -> None:
        if options.get("batched") or options.get("compiled"):
            raise ValueError("Reptile runs its tasks one after another; batched=True and compiled=True are not supported")
        if inner_batch < 0:
            raise ValueError(f"inner_batch must be >= 0 (0: the whole support set), got {inner_batch}")
        super().__init__(model, **{**options, "first_order": True})
        self.inner_batch = inner_batch

    @classmethod
    def from_config(cls, backbone: nn.Module, output_shape: tuple[int, ...], config, train_classes: int) -> "Reptile":
        return cls(nn.Sequential(backbone, *linear_head(output_shape, config.ways)), inner_batch=config.inner_batch,
                   **inner_options(config))

    def minibatches(self, size: int, steps: int) -> list[Tensor | None]:
        """Support indices for each inner step: ``inner_batch`` at a time from shuffled passes, or None (all)."""
        if not self.inner_batch or size <= self.inner_batch:
            return [None] * steps
        passes = -(-self.inner_batch * steps // size)
        order = torch.cat([torch.randperm(size) for _ in range(passes)])
        return list(order[: self.inner_batch * steps].view(steps, self.inner_batch))

    def fast_weights(self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True) -> Params:
        fast = {n: p.detach() for n, p in self.model.named_parameters()}
        for step, batch in enumerate(self.minibatches(len(support_y), self.inner_steps_now())):
            x, y = (support_x, support_y) if batch is None else (support_x[batch], support_y[batch])
            fast = sgd_inner_loop(lambda p, x=x, y=y: self.checked_loss(self.forward_with(p, x), y, ways), fast, 1,
                                  self.inner_rates(), first_order=True, check_finite=check_finite, steps_before=step)
        return fast

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        params = dict(self.model.named_parameters())
        distances, accuracies = [], []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            fast = self.adapt(task.support_x, task.support_y)
            with torch.no_grad():
                accuracies.append(accuracy(self.predict(fast, task.query_x), task.query_y))
            distances.append(sum(0.5 * (params[n] - fast[n]).pow(2).sum() for n in params))
        return MetaLoss(torch.stack(distances).mean(), sum(accuracies) / len(accuracies))
