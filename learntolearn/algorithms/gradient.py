"""What every algorithm that adapts a meta-learned initialisation by gradient steps shares.

MAML, ANIL, Meta-SGD, Reptile and the meta-learner LSTM hold one network (``model``), adapt it to a
support set by a few steps on the support loss (``fast_weights``, which each of them defines) and
predict queries with the network at the adapted weights. BatchNorm uses the statistics of the current
batch in training *and* at test time, with no running statistics (MAML's reference implementation;
:func:`learntolearn.nn.batchnorm.use_batch_statistics`), so nothing leaks from one task to another.

How a batch of tasks is evaluated in meta-training (a Python loop, ``vmap`` over tasks, compiled
graphs) is a separate choice, an :class:`~learntolearn.algorithms.execution.Execution`: the learner
only provides :meth:`GradientLearner.task_loss`, one task's query loss as a pure function of tensors.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import Algorithm, AlgorithmConfig, MetaLoss, ModelSetting, check_support
from learntolearn.algorithms.execution import Execution, TaskLoop
from learntolearn.algorithms.inner import Params, StepRates, check_inner_settings
from learntolearn.errors import ConfigError, TaskError
from learntolearn.nn.heads import linear_head
from learntolearn.types import Task

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


class GradientLearner(Algorithm):
    """A network adapted by gradient steps on the support loss; subclasses define :meth:`fast_weights`.

    Args:
        model: the network adapted in the inner loop; its BatchNorm layers are switched to batch
            statistics in place (as ``execution`` needs them).
        inner_lr: inner-loop step size.
        inner_steps: inner steps during meta-training; ``test_inner_steps`` at evaluation (default: the same).
        loss: ``cross_entropy`` (classification) or ``mse`` (regression).
        bfloat16_queries: run the query pass (the network at the fast weights on the query set, and its
            backward) under bfloat16 autocast; the inner loop stays in the model's dtype.
        execution: how a batch of tasks is evaluated (default: one task after another).
    """

    adapts_by_gradient = True
    per_task_meta_loss = True
    fixed_ways = True
    supports_regression = True

    model: nn.Module

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        test_inner_steps: int | None = None,
        loss: str = "cross_entropy",
        bfloat16_queries: bool = False,
        execution: Execution | None = None,
    ) -> None:
        super().__init__()
        test_inner_steps = test_inner_steps or inner_steps
        check_inner_settings(inner_lr, inner_steps, test_inner_steps)
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if not list(model.parameters()):
            raise ConfigError("the model has no parameters to adapt")
        self.execution = execution or TaskLoop()
        self.model = self.execution.prepare(model)
        self.inner_lr, self.inner_steps, self.test_inner_steps = inner_lr, inner_steps, test_inner_steps
        self.loss_name, self.bfloat16_queries = loss, bfloat16_queries

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, setting: ModelSetting) -> nn.Module:
        return backbone  # bfloat16 applies to the query passes only (see ``bfloat16_queries``)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> GradientLearner:
        return cls(
            nn.Sequential(backbone, *linear_head(setting.output_shape, setting.ways)),
            bfloat16_queries=setting.precision == "bfloat16",
            loss="mse" if setting.regression else "cross_entropy",
            **config.to_dict(),
        )

    @abc.abstractmethod
    def fast_weights(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> Params:
        """The network's parameters adapted to a support set (``check_finite`` off where values cannot be read)."""

    def inner_rates(self) -> StepRates:
        """The step size of each adapted parameter: the scalar ``inner_lr`` unless a learner learns them."""
        return self.inner_lr

    def inner_steps_now(self) -> int:
        return self.inner_steps if self.training else self.test_inner_steps

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

    def embed(self, x: Tensor) -> Tensor:
        """The meta-learned network's features before its last layer (flattened), e.g. for novelty scores."""
        layers = list(self.model.children())
        if not isinstance(self.model, nn.Sequential) or len(layers) < 2:
            raise TaskError(f"{type(self).__name__}'s model is not a backbone followed by a head; it has no features")
        return nn.Sequential(*layers[:-1])(x).flatten(1)

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

    def task_loss(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        query_y: Tensor,
        ways: int | None,
        check_finite: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """One task's query loss and outputs at its fast weights, with no Python-side checks unless
        ``check_finite`` (what the vmapped and compiled executions run)."""
        outputs = self.predict(self.fast_weights(support_x, support_y, ways, check_finite=check_finite), query_x)
        return self.query_loss(outputs, query_y), outputs

    def tasks_loss(
        self, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor, ways: int | None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`task_loss` of each task in a stack of equally shaped tasks (one compiled graph unrolls them all)."""
        results = [self.task_loss(*task, ways) for task in zip(support_x, support_y, query_x, query_y)]
        return torch.stack([loss for loss, _ in results]), torch.stack([outputs for _, outputs in results])

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        return self.execution.meta_loss(self, tasks)
