"""Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018).

For each task, train from the current initialisation ``theta`` with ``inner_steps`` SGD steps on
the support set to get ``theta~``; then move ``theta`` towards the mean of the ``theta~`` (Algorithm 2,
"batched"; Algorithm 1, "serial", is a batch of one task). This fits the shared interface as a
surrogate loss, ``0.5 * mean_tasks ||theta - stopgrad(theta~)||^2``, whose gradient is exactly
``theta - mean theta~``: with plain SGD and learning rate ``epsilon`` as the outer optimiser the step
is the paper's ``theta <- theta + epsilon * (mean theta~ - theta)``. At test time the model is
fine-tuned on the support set for ``test_inner_steps`` steps. BatchNorm uses the statistics of the
current batch (the paper's transductive setting). The paper's inner optimiser on Omniglot is Adam;
here it is SGD.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, MetaLoss, accuracy, check_query
from learntolearn.algorithms.inner import Params, sgd_inner_loop
from learntolearn.algorithms.maml import MAML
from learntolearn.types import Task


@ALGORITHMS.register("reptile")
class Reptile(MAML):
    """Reptile over any ``nn.Module``; shares MAML's functional inner loop (always first order)."""

    def __init__(self, model: nn.Module, **options) -> None:
        if options.get("batched"):
            raise ValueError("Reptile runs its tasks one after another; batched=True is not supported")
        super().__init__(model, **{**options, "first_order": True})

    def fast_weights(self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True) -> Params:
        start = {n: p.detach() for n, p in self.model.named_parameters()}
        return sgd_inner_loop(lambda p: self.checked_loss(self.forward_with(p, support_x), support_y, ways),
                              start, self.inner_steps_now(), self.inner_rates(), first_order=True,
                              check_finite=check_finite)

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
