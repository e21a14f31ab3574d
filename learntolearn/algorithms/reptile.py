"""Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018).

For each task, train from the current initialisation ``theta`` with ``inner_steps`` SGD steps on
the support set to get ``theta~``; then move ``theta`` towards the mean of the ``theta~`` (Algorithm 2,
"batched"; Algorithm 1, "serial", is a batch of one task). This fits the shared interface as a
surrogate loss, ``0.5 * mean_tasks ||theta - stopgrad(theta~)||^2``, whose gradient is exactly
``theta - mean theta~``: with plain SGD and learning rate ``epsilon`` as the outer optimiser the step
is the paper's ``theta <- theta + epsilon * (mean theta~ - theta)``. At test time the model is
fine-tuned on the support set for ``test_inner_steps`` steps. BatchNorm uses the statistics of the
current batch (the paper's transductive setting). The inner optimiser is SGD, or with
``inner_optimizer="adam"`` the paper's: Adam with ``beta1 = 0`` (Appendix A), whose second-moment
estimates carry over from task to task in meta-training and are used, not updated, when adapting at
test time, as in the authors' released code (it restores only the model's weights after each
training task, and all variables after each evaluation task). With ``inner_batch`` each inner step
sees a minibatch of that many support examples, drawn in shuffled passes over the support set (the
paper's Omniglot setting: 10-shot training tasks, 5 steps of 10, so each step sees a fifth of the
task); a support set no larger than ``inner_batch`` is used whole, as at 1-shot test time.
``test_inner_batch`` sets the minibatch at evaluation apart from training's (the authors' ``eval-batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, MetaLoss, accuracy, check_query
from learntolearn.algorithms.gradient import GradientLearner
from learntolearn.algorithms.inner import InnerLoopConfig, Params, adam_step_no_momentum, sgd_inner_loop
from learntolearn.settings import setting
from learntolearn.types import Task

INNER_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class ReptileConfig(InnerLoopConfig):
    """Reptile's settings: its inner loop, minibatches and inner optimiser."""

    section = "Reptile"

    inner_batch: int = setting(
        0, "Support examples per inner step, drawn in shuffled passes (0: the whole support set).", minimum=0
    )
    test_inner_batch: int = setting(
        0, "Support examples per inner step at evaluation (the authors' eval-batch; 0: as inner_batch).", minimum=0
    )
    inner_optimizer: str = setting(
        "sgd",
        "Inner optimiser; adam is Adam with beta1=0 whose statistics carry across tasks (Nichol et al. 2018).",
        choices=INNER_OPTIMIZERS,
    )


@ALGORITHMS.register("reptile")
class Reptile(GradientLearner):
    """Reptile over any ``nn.Module``: first-order inner steps, and an outer step towards the adapted weights."""

    Config = ReptileConfig
    #: 2: test-time minibatches come from a fixed seed per adaptation (they came from the global generator)
    evaluation_version = 2
    inner_adam_steps: Tensor

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_batch: int = 0,
        test_inner_batch: int = 0,
        inner_optimizer: str = "sgd",
        **options,
    ) -> None:
        ReptileConfig(
            inner_batch=inner_batch, test_inner_batch=test_inner_batch, inner_optimizer=inner_optimizer
        )  # its own rules, before the model changes
        super().__init__(model, **options)
        self.inner_batch, self.test_inner_batch, self.inner_optimizer = inner_batch, test_inner_batch, inner_optimizer
        if inner_optimizer == "adam":
            for name, p in self.model.named_parameters():
                self.register_buffer(self.moment_name(name), torch.zeros_like(p))
            self.register_buffer("inner_adam_steps", torch.zeros((), dtype=torch.int64))

    @staticmethod
    def moment_name(parameter: str) -> str:
        return "inner_adam_moment__" + parameter.replace(".", "__")

    def minibatches(self, size: int, steps: int) -> list[Tensor | None]:
        """Support indices for each inner step: ``inner_batch`` (``test_inner_batch`` in evaluation) at a time
        from shuffled passes, or None (all); evaluation shuffles with a fixed seed, as the baselines do."""
        batch = self.inner_batch if self.training else (self.test_inner_batch or self.inner_batch)
        if not batch or size <= batch:
            return [None] * steps
        passes = -(-batch * steps // size)
        if self.training:
            order = torch.cat([self.permutation(size) for _ in range(passes)])
        else:  # the same draws for every adaptation, so a test episode's score depends on that episode alone
            draws = torch.Generator().manual_seed(0)
            order = torch.cat([torch.randperm(size, generator=draws) for _ in range(passes)])
        return list(order[: batch * steps].view(steps, batch))

    def fast_weights(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> Params:
        fast = {n: p.detach() for n, p in self.model.named_parameters()}
        if self.inner_optimizer == "adam":
            moments = {n: getattr(self, self.moment_name(n)) for n in fast}
            count = int(self.inner_adam_steps)
        for step, batch in enumerate(self.minibatches(len(support_y), self.inner_steps_now())):
            x, y = (support_x, support_y) if batch is None else (support_x[batch], support_y[batch])

            def loss_fn(p: Params, x: Tensor = x, y: Tensor = y) -> Tensor:
                return self.checked_loss(self.forward_with(p, x), y, ways)

            if self.inner_optimizer == "adam":
                fast, moments = adam_step_no_momentum(
                    loss_fn, fast, moments, count + step, self.inner_lr, check_finite=check_finite, steps_before=step
                )
            else:
                fast = sgd_inner_loop(
                    loss_fn, fast, 1, self.inner_rates(), first_order=True, check_finite=check_finite, steps_before=step
                )
        if self.inner_optimizer == "adam" and self.training:  # carried to the next task; test-time adaptation leaves it
            for name, moment in moments.items():
                getattr(self, self.moment_name(name)).copy_(moment)
            self.inner_adam_steps += self.inner_steps_now()
        return fast

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        params = dict(self.model.named_parameters())
        distances, accuracies = [], []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            fast = self.adapt(task.support_x, task.support_y)
            with torch.no_grad():
                accuracies.append(accuracy(self.predict(fast, task.query_x), task.query_y))
            distances.append(cast(Tensor, sum(0.5 * (params[n] - fast[n]).pow(2).sum() for n in params)))
        return MetaLoss(torch.stack(distances).mean(), sum(accuracies) / len(accuracies))
