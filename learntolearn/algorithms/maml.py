"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML, as pure functions over parameters.

For each task, fast weights come from ``inner_steps`` gradient steps on the support loss (Eq. 1);
the meta-objective is the query loss at the fast weights, averaged over the task batch (Eq. 2, 3).
``first_order=True`` detaches the inner gradients (Section 5.2, "first-order approximation").

BatchNorm uses batch statistics, in training and at test time, as in the reference implementation
(:mod:`learntolearn.algorithms.gradient`), so test-time adaptation is transductive over each query
batch, as in the paper.

Two options from MAML++ (Antoniou, Edwards & Storkey, ICLR 2019, Section 4): ``per_step_rates``
learns an inner learning rate per parameter tensor and per inner step ("LSLR"), starting at
``inner_lr``; evaluation with more steps than training reuses the last step's rates.
``multi_step_loss_steps=N`` makes the meta-loss a weighted sum of the query losses after every inner
step ("MSL"), the weights annealed linearly from uniform to the final step alone over the first N
meta-iterations (the paper anneals over its first epochs).

``batched=True`` evaluates the task batch with ``torch.func.vmap`` and ``compiled=True`` through
``torch.compile`` graphs (:mod:`learntolearn.algorithms.execution`); ANIL and Meta-SGD inherit both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import (
    ALGORITHMS,
    PRECISIONS,
    AlgorithmConfig,
    MetaLoss,
    accuracy,
    check_query,
)
from learntolearn.algorithms.execution import CompiledTasks, Execution, TaskLoop, VmappedTasks
from learntolearn.algorithms.gradient import GradientLearner
from learntolearn.algorithms.inner import InnerLoopConfig, Params, StepRates, sgd_trajectory
from learntolearn.errors import ConfigError
from learntolearn.nn.backbones import ConvNet
from learntolearn.settings import setting
from learntolearn.types import Task


def execution(batched: bool, compiled: bool, tasks_per_graph: int) -> Execution:
    """The execution that ``batched`` and ``compiled`` choose."""
    if compiled:
        return CompiledTasks(tasks_per_graph)
    return VmappedTasks() if batched else TaskLoop()


@dataclass(frozen=True)
class GradientConfig(InnerLoopConfig):
    """Settings of MAML and the variants that share its meta-gradient (ANIL, Meta-SGD)."""

    section = "MAML"

    first_order: bool = setting(False, "Drop the second-order terms of the meta-gradient (first-order MAML).")
    batched: bool = setting(False, "vmap the meta-batch instead of looping over tasks.")
    compiled: bool = setting(
        False,
        "Run each task's meta-training loss through torch.compile (compiled at the first step; faster on small tasks).",
    )

    def check(self) -> None:
        super().check()
        if self.batched and self.compiled:
            raise ConfigError(
                "compiled compiles the task loop (a compiled vmap was no faster than vmap); choose batched or compiled"
            )


@dataclass(frozen=True)
class MAMLConfig(GradientConfig):
    """MAML's settings, with the two MAML++ options (Antoniou et al. 2019)."""

    per_step_rates: bool = setting(False, "MAML++: learn an inner rate per parameter tensor and inner step.")
    multi_step_loss_steps: int = setting(
        0,
        "MAML++: query loss after every inner step, annealed to the last over this many meta-iterations (0: off).",
        minimum=0,
    )

    def check(self) -> None:
        super().check()
        if self.multi_step_loss_steps and (self.batched or self.compiled):
            raise ConfigError("multi_step_loss_steps needs the eager task loop; drop batched and compiled")


@ALGORITHMS.register("maml")
class MAML(GradientLearner):
    """MAML over any ``nn.Module`` whose output is the task's logits (or regression targets).

    Args:
        model: the network adapted in the inner loop (:class:`~learntolearn.algorithms.gradient.GradientLearner`).
        inner_lr, inner_steps, test_inner_steps, loss, bfloat16_queries: as for ``GradientLearner``.
        first_order: drop second-order terms (first-order MAML).
        batched: vmap over the tasks of a batch instead of looping in Python.
        compiled: meta-train through ``torch.compile`` (same values up to float rounding).
        tasks_per_graph: with ``compiled``, the number of tasks unrolled into one compiled graph (default: 8 in
            first order, 1 in second order, where 4 make steps a few percent faster but compile about 3x longer,
            a cost that short runs do not repay).
        per_step_rates: MAML++'s learned rate per parameter tensor and inner step.
        multi_step_loss_steps: MAML++'s multi-step loss, annealed over this many meta-iterations (0: off).
    """

    Config: ClassVar[type[AlgorithmConfig]] = MAMLConfig
    #: bfloat16 here means bfloat16 query passes (checked against float32 by ``ltl reproduce precision``)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS

    step_rates: nn.ParameterDict | None
    meta_iterations: Tensor

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        test_inner_steps: int | None = None,
        first_order: bool = False,
        batched: bool = False,
        compiled: bool = False,
        tasks_per_graph: int | None = None,
        loss: str = "cross_entropy",
        per_step_rates: bool = False,
        multi_step_loss_steps: int = 0,
        bfloat16_queries: bool = False,
    ) -> None:
        settings: dict[str, Any] = {
            "inner_lr": inner_lr,
            "inner_steps": inner_steps,
            "test_inner_steps": test_inner_steps or inner_steps,
            "first_order": first_order,
            "batched": batched,
            "compiled": compiled,
        }
        if per_step_rates or multi_step_loss_steps:
            if type(self) is not MAML:
                raise ConfigError(
                    f"per_step_rates and multi_step_loss_steps are MAML++ options of maml; "
                    f"{type(self).__name__} does not take them"
                )
            MAMLConfig(**settings, per_step_rates=per_step_rates, multi_step_loss_steps=multi_step_loss_steps)
        else:
            GradientConfig(**settings)  # the one place the settings' rules live
        if tasks_per_graph is None:
            tasks_per_graph = 8 if first_order else 1
        super().__init__(
            model,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            test_inner_steps=test_inner_steps,
            loss=loss,
            bfloat16_queries=bfloat16_queries,
            execution=execution(batched, compiled, tasks_per_graph),
        )
        self.first_order, self.batched, self.compiled = first_order, batched, compiled
        for module in self.model.modules():
            if isinstance(module, ConvNet) and not batched:
                module.use_native_convolutions()  # strided 3x3 convolutions in C (nn.strided_conv)
            if isinstance(module, ConvNet) and not (batched or compiled):
                module.use_fused_blocks()  # the conv blocks' fused BatchNorm, pooling and ReLU (nn.norm_pool)
        self.step_rates = (
            nn.ParameterDict(
                {
                    name.replace(".", "__"): nn.Parameter(torch.full((inner_steps,), float(inner_lr)))
                    for name, _ in self.model.named_parameters()
                }
            )
            if per_step_rates
            else None
        )
        self.multi_step_loss_steps = multi_step_loss_steps
        # saved only when it matters, so checkpoints of plain MAML keep their keys
        self.register_buffer(
            "meta_iterations", torch.zeros((), dtype=torch.int64), persistent=bool(multi_step_loss_steps)
        )

    # -- pieces the variants override -------------------------------------------------------
    def inner_rates(self) -> StepRates:
        """The step size of each adapted parameter (a scalar here; learned tensors in Meta-SGD; per step with
        ``per_step_rates``)."""
        step_rates = self.step_rates
        if step_rates is None:
            return self.inner_lr
        last = self.inner_steps - 1
        return lambda step: {name.replace("__", "."): rates[min(step, last)] for name, rates in step_rates.items()}

    def step_weights(self) -> Tensor:
        """MAML++'s multi-step loss weights: uniform over the inner steps at first, all on the last step after
        ``multi_step_loss_steps`` meta-iterations."""
        progress = min(1.0, int(self.meta_iterations) / self.multi_step_loss_steps)
        weights = torch.full((self.inner_steps,), (1.0 - progress) / self.inner_steps)
        weights[-1] += progress
        return weights

    def adapted_names(self) -> list[str]:
        """Names of the parameters the inner loop adapts (all of them for MAML)."""
        return [name for name, _ in self.model.named_parameters()]

    # -- the algorithm ----------------------------------------------------------------------
    def trajectory(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> list[Params]:
        """All parameters after each inner step."""
        params: Params = dict(self.model.named_parameters())
        adapted = {n: params.pop(n) for n in self.adapted_names()}
        steps = sgd_trajectory(
            lambda p: self.checked_loss(self.forward_with({**params, **p}, support_x), support_y, ways),
            adapted,
            self.inner_steps_now(),
            self.inner_rates(),
            first_order=self.first_order or not self.training,
            check_finite=check_finite,
        )
        return [{**params, **fast} for fast in steps]

    def fast_weights(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> Params:
        return self.trajectory(support_x, support_y, ways, check_finite=check_finite)[-1]

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        if self.multi_step_loss_steps and self.training:
            return self.multi_step_meta_loss(tasks)
        return super().meta_loss(tasks)

    def multi_step_meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        """MAML++ MSL: query losses after every inner step, weighted by :meth:`step_weights`."""
        weights, losses, accuracies = self.step_weights(), [], []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            steps = self.trajectory(task.support_x, task.support_y, self.check_task(task.support_x, task.support_y))
            outputs = [self.predict(fast, task.query_x) for fast in steps]
            losses.append(sum(w * self.query_loss(out, task.query_y) for w, out in zip(weights, outputs)))
            accuracies.append(accuracy(outputs[-1].detach(), task.query_y))
        self.meta_iterations += 1
        return MetaLoss(torch.stack(losses).mean(), sum(accuracies) / len(accuracies))
