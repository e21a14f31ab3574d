"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML, as pure functions over parameters.

For each task, fast weights come from ``inner_steps`` gradient steps on the support loss (Eq. 1);
the meta-objective is the query loss at the fast weights, averaged over the task batch (Eq. 2, 3).
``first_order=True`` detaches the inner gradients (Section 5.2, "first-order approximation").

BatchNorm follows the reference implementation: statistics of the current batch are used in
training *and* at test time and no running statistics are kept (see
:func:`learntolearn.nn.batchnorm.use_batch_statistics`, applied to the model in place), so nothing
leaks from one task to another. Test-time adaptation is therefore transductive over each query
batch, as in the paper.

Two options from MAML++ (Antoniou, Edwards & Storkey, ICLR 2019, Section 4): ``per_step_rates``
learns an inner learning rate per parameter tensor and per inner step ("LSLR"), starting at
``inner_lr``; evaluation with more steps than training reuses the last step's rates.
``multi_step_loss_steps=N`` makes the meta-loss a weighted sum of the query losses after every inner
step ("MSL"), the weights annealed linearly from uniform to the final step alone over the first N
meta-iterations (the paper anneals over its first epochs).

``batched=True`` evaluates the task batch with ``torch.func.vmap`` instead of a Python loop over
tasks; both paths share one inner loop and agree with finite differences (tested). The vmapped
path needs BatchNorm in decomposed form, so the model's BatchNorm layers are swapped for it, and
the default (contiguous) memory layout, so channels-last backbones are switched back.

``compiled=True`` runs the meta-training loss through ``torch.compile`` graphs, compiled at the first
step (and again if the task shapes change), which fuse the many small operations of small tasks
(``benchmarks/maml_peers.py``); evaluation stays eager. Each graph unrolls ``tasks_per_graph``
consecutive tasks of equal shapes, so Dynamo's guards and the autograd bookkeeping around a graph
run once per group instead of once per task; more tasks per graph compile longer. By default first
order unrolls 8 tasks and second order 1, where more gained nothing measurable
(``benchmarks/compiled_maml.py`` measures both). The graph keeps ReLU's backward masks as floats and
max-pooling's backward in PyTorch's kernel (:mod:`learntolearn.nn.compile`), where Inductor's CPU code
is slow (``benchmarks/compile_kernels.py``). Each instance compiles its own copy of :meth:`task_loss`,
so instances do not share Dynamo's cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import (
    ALGORITHMS,
    PRECISIONS,
    Algorithm,
    AlgorithmConfig,
    MetaLoss,
    ModelSetting,
    accuracy,
    check_query,
    check_support,
)
from learntolearn.algorithms.inner import (
    InnerLoopConfig,
    Params,
    StepRates,
    sgd_trajectory,
)
from learntolearn.errors import ConfigError, TaskError
from learntolearn.nn.backbones import ConvNet
from learntolearn.nn.batchnorm import use_batch_statistics
from learntolearn.nn.compile import compile_method
from learntolearn.nn.heads import linear_head
from learntolearn.settings import setting
from learntolearn.types import Task

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def stack_tasks(tasks: Sequence[Task]) -> list[Tensor]:
    """Support inputs, support targets, query inputs and query targets of equally shaped tasks, stacked."""
    return [
        torch.stack([getattr(t, field) for t in tasks]) for field in ("support_x", "support_y", "query_x", "query_y")
    ]


def same_shapes(a: Task, b: Task) -> bool:
    """Whether two tasks' support and query tensors agree in shape and dtype (so they stack)."""
    return all(
        x.shape == y.shape and x.dtype == y.dtype
        for x, y in zip(
            (a.support_x, a.support_y, a.query_x, a.query_y), (b.support_x, b.support_y, b.query_x, b.query_y)
        )
    )


def finite(losses: Tensor) -> Tensor:
    """``losses``, after checking that every task's query loss is finite."""
    if not bool(torch.isfinite(losses).all()):
        raise FloatingPointError(
            "a task's query loss is not finite after the inner loop; lower the inner learning rate"
        )
    return losses


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
class MAML(Algorithm):
    """MAML over any ``nn.Module`` whose output is the task's logits (or regression targets).

    Args:
        model: the network adapted in the inner loop; its BatchNorm layers are switched to batch
            statistics in place (and to a decomposed form when ``batched``).
        inner_lr: inner-loop step size alpha.
        inner_steps: inner steps during meta-training; ``test_inner_steps`` at evaluation.
        first_order: drop second-order terms (first-order MAML).
        batched: vmap over the tasks of a batch instead of looping in Python.
        compiled: meta-train through ``torch.compile`` (same values up to float rounding).
        tasks_per_graph: with ``compiled``, the number of tasks unrolled into one compiled graph (default: 8 in
            first order, 1 in second order, where 8 compiled 8x longer for no gain).
        loss: ``cross_entropy`` (classification) or ``mse`` (regression).
        per_step_rates: MAML++'s learned rate per parameter tensor and inner step.
        multi_step_loss_steps: MAML++'s multi-step loss, annealed over this many meta-iterations (0: off).
        bfloat16_queries: run the query pass (the network at the fast weights on the query set, and its
            backward) under bfloat16 autocast; the inner loop, whose second derivatives the meta-gradient
            needs, stays in the model's dtype. Checked against float32 by ``ltl reproduce precision``.
    """

    Config: ClassVar[type[AlgorithmConfig]] = MAMLConfig
    adapts_by_gradient = True
    fixed_ways = True
    supports_regression = True
    #: bfloat16 here means bfloat16 query passes; the inner loop stays float32
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS

    model: nn.Module
    step_rates: nn.ParameterDict | None
    meta_iterations: Tensor
    _compiled_tasks_loss: Callable[..., tuple[Tensor, Tensor]] | None

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
        super().__init__()
        test_inner_steps = test_inner_steps or inner_steps
        settings: dict[str, Any] = {
            "inner_lr": inner_lr,
            "inner_steps": inner_steps,
            "test_inner_steps": test_inner_steps,
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
        if tasks_per_graph < 1:
            raise ConfigError(f"tasks_per_graph must be >= 1, got {tasks_per_graph}")
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if not list(model.parameters()):
            raise ConfigError("the model has no parameters to adapt")
        self.model = use_batch_statistics(model, decomposed=batched)
        if batched:
            for module in self.model.modules():
                if isinstance(module, ConvNet):
                    module.use_contiguous_layout()
        self.inner_lr, self.inner_steps, self.test_inner_steps = inner_lr, inner_steps, test_inner_steps
        self.first_order, self.batched, self.compiled, self.loss_name = first_order, batched, compiled, loss
        self.tasks_per_graph = tasks_per_graph
        self._compiled_tasks_loss = compile_method(self.tasks_loss) if compiled else None
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
        self.bfloat16_queries = bfloat16_queries
        # saved only when it matters, so checkpoints of plain MAML keep their keys
        self.register_buffer(
            "meta_iterations", torch.zeros((), dtype=torch.int64), persistent=bool(multi_step_loss_steps)
        )

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, setting: ModelSetting) -> nn.Module:
        return backbone  # bfloat16 applies to the query passes only (see ``bfloat16_queries``)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> MAML:
        return cls(
            nn.Sequential(backbone, *linear_head(setting.output_shape, setting.ways)),
            bfloat16_queries=setting.precision == "bfloat16",
            loss="mse" if setting.regression else "cross_entropy",
            **config.to_dict(),
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
    def forward_with(self, params: Params, x: Tensor) -> Tensor:
        return torch.func.functional_call(self.model, params, (x,))

    def query_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return LOSSES[self.loss_name](outputs, targets)

    def check_task(self, support_x: Tensor, support_y: Tensor) -> int | None:
        """The number of ways of a classification support set (validated); None for regression."""
        return check_support(support_x, support_y) if self.loss_name == "cross_entropy" else None

    def checked_loss(self, outputs: Tensor, targets: Tensor, ways: int | None) -> Tensor:
        """``query_loss``, after checking that a classifier has one logit per way."""
        if ways is not None and outputs.shape[-1] != ways:
            raise TaskError(
                f"the model outputs {outputs.shape[-1]} logits but the task has {ways} ways; "
                f"build the model's head for {ways} classes"
            )
        return self.query_loss(outputs, targets)

    def inner_steps_now(self) -> int:
        return self.inner_steps if self.training else self.test_inner_steps

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

    def adapt(self, support_x: Tensor, support_y: Tensor) -> Params:
        return self.fast_weights(support_x, support_y, self.check_task(support_x, support_y))

    def predict(self, adapted: Params, query_x: Tensor) -> Tensor:
        return self.in_query_precision(lambda: self.forward_with(adapted, query_x), query_x)

    def in_query_precision(self, query_pass: Callable[[], Tensor], query_x: Tensor) -> Tensor:
        """``query_pass()``, under bfloat16 autocast with a float32 result if ``bfloat16_queries``."""
        if not self.bfloat16_queries:
            return query_pass()
        with torch.autocast(query_x.device.type, dtype=torch.bfloat16):
            return query_pass().float()

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        if self.multi_step_loss_steps and self.training:
            return self.multi_step_meta_loss(tasks)
        if self.compiled and self.training:
            return self.compiled_meta_loss(tasks)
        if not self.batched:
            return super().meta_loss(tasks)
        ways = {self.check_task(t.support_x, t.support_y) for t in tasks}
        for task in tasks:
            check_query(task.support_x, task.query_x)
        if len(ways) != 1:
            raise TaskError(
                f"batched=True needs tasks with the same number of ways, got {sorted(w or 0 for w in ways)}"
            )
        stacked = stack_tasks(tasks)
        vmapped: Callable[..., tuple[Tensor, Tensor]] = torch.func.vmap(self.task_loss, in_dims=(0, 0, 0, 0, None))
        losses, outputs = vmapped(*stacked, ways.pop())
        return MetaLoss(finite(losses).mean(), accuracy(outputs, stacked[3]))

    def task_loss(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor, ways: int | None
    ) -> tuple[Tensor, Tensor]:
        """One task's query loss and outputs at its fast weights, with no Python-side checks (vmapped or compiled)."""
        outputs = self.predict(self.fast_weights(support_x, support_y, ways, check_finite=False), query_x)
        return self.query_loss(outputs, query_y), outputs

    def tasks_loss(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor, ways: int | None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`task_loss` of each task in a stack of equally shaped tasks (one compiled graph unrolls them all)."""
        results = [self.task_loss(*task, ways) for task in zip(support_x, support_y, query_x, query_y)]
        return torch.stack([loss for loss, _ in results]), torch.stack([outputs for _, outputs in results])

    def compiled_meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        """The task loop, ``tasks_per_graph`` equally shaped tasks at a time through one ``torch.compile`` graph."""
        groups: list[tuple[int | None, list[Task]]] = []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            ways = self.check_task(task.support_x, task.support_y)
            if (
                groups
                and len(groups[-1][1]) < self.tasks_per_graph
                and groups[-1][0] == ways
                and same_shapes(groups[-1][1][0], task)
            ):
                groups[-1][1].append(task)
            else:
                groups.append((ways, [task]))
        losses, accuracies = [], []
        assert self._compiled_tasks_loss is not None  # built in __init__ when compiled
        for ways, group in groups:
            stacked = stack_tasks(group)
            loss, outputs = self._compiled_tasks_loss(*stacked, ways)
            losses.append(loss)
            accuracies += [accuracy(task_outputs, targets) for task_outputs, targets in zip(outputs, stacked[3])]
        return MetaLoss(finite(torch.cat(losses)).mean(), sum(accuracies) / len(accuracies))

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
