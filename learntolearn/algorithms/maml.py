"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML, as pure functions over parameters.

For each task, fast weights come from ``inner_steps`` gradient steps on the support loss (Eq. 1);
the meta-objective is the query loss at the fast weights, averaged over the task batch (Eq. 2, 3).
``first_order=True`` detaches the inner gradients (Section 5.2, "first-order approximation").

BatchNorm follows the reference implementation: statistics of the current batch are used in
training *and* at test time and no running statistics are kept (see
:func:`learntolearn.nn.batchnorm.use_batch_statistics`, applied to the model in place), so nothing
leaks from one task to another. Test-time adaptation is therefore transductive over each query
batch, as in the paper.

``batched=True`` evaluates the task batch with ``torch.func.vmap`` instead of a Python loop over
tasks; both paths share one inner loop and agree with finite differences (tested). The vmapped
path needs BatchNorm in decomposed form, so the model's BatchNorm layers are swapped for it, and
the default (contiguous) memory layout, so channels-last backbones are switched back.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    MetaLoss,
    accuracy,
    check_query,
    check_support,
)
from learntolearn.algorithms.inner import (
    LearningRate,
    Params,
    check_inner_settings,
    sgd_inner_loop,
)
from learntolearn.nn.backbones import ConvNet
from learntolearn.nn.batchnorm import use_batch_statistics
from learntolearn.types import Task

LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def linear_head(output_shape: tuple[int, ...], ways: int) -> list[nn.Module]:
    """A linear classifier over the backbone's output, flattened first when it is not a vector."""
    linear = nn.Linear(math.prod(output_shape), ways)
    return [linear] if len(output_shape) == 1 else [nn.Flatten(), linear]


def inner_options(config) -> dict:
    """The inner-loop settings of a run config, as keyword arguments of the MAML family."""
    return {"inner_lr": config.inner_lr, "inner_steps": config.inner_steps,
            "test_inner_steps": config.test_inner_steps, "first_order": config.first_order, "batched": config.batched}


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
        loss: ``cross_entropy`` (classification) or ``mse`` (regression).
    """

    adapts_by_gradient = True

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.4, inner_steps: int = 1,
                 test_inner_steps: int | None = None, first_order: bool = False, batched: bool = False,
                 loss: str = "cross_entropy") -> None:
        super().__init__()
        test_inner_steps = test_inner_steps or inner_steps
        check_inner_settings(inner_lr, inner_steps, test_inner_steps)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if not list(model.parameters()):
            raise ValueError("the model has no parameters to adapt")
        self.model = use_batch_statistics(model, decomposed=batched)
        if batched:
            for module in self.model.modules():
                if isinstance(module, ConvNet):
                    module.use_contiguous_layout()
        self.inner_lr, self.inner_steps, self.test_inner_steps = inner_lr, inner_steps, test_inner_steps
        self.first_order, self.batched, self.loss_name = first_order, batched, loss

    @classmethod
    def from_config(cls, backbone: nn.Module, output_shape: tuple[int, ...], config, train_classes: int) -> "MAML":
        return cls(nn.Sequential(backbone, *linear_head(output_shape, config.ways)), **inner_options(config))

    # -- pieces the variants override -------------------------------------------------------
    def inner_rates(self) -> LearningRate:
        """The step size of each adapted parameter (a scalar here; learned tensors in Meta-SGD)."""
        return self.inner_lr

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
            raise ValueError(f"the model outputs {outputs.shape[-1]} logits but the task has {ways} ways; "
                             f"build the model's head for {ways} classes")
        return self.query_loss(outputs, targets)

    def inner_steps_now(self) -> int:
        return self.inner_steps if self.training else self.test_inner_steps

    def fast_weights(self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True) -> Params:
        params = dict(self.model.named_parameters())
        adapted = {n: params.pop(n) for n in self.adapted_names()}
        fast = sgd_inner_loop(
            lambda p: self.checked_loss(self.forward_with({**params, **p}, support_x), support_y, ways),
            adapted, self.inner_steps_now(), self.inner_rates(),
            first_order=self.first_order or not self.training, check_finite=check_finite)
        return {**params, **fast}

    def adapt(self, support_x: Tensor, support_y: Tensor) -> Params:
        return self.fast_weights(support_x, support_y, self.check_task(support_x, support_y))

    def predict(self, adapted: Params, query_x: Tensor) -> Tensor:
        return self.forward_with(adapted, query_x)

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        if not self.batched:
            return super().meta_loss(tasks)
        ways = {self.check_task(t.support_x, t.support_y) for t in tasks}
        for task in tasks:
            check_query(task.support_x, task.query_x)
        if len(ways) != 1:
            raise ValueError(f"batched=True needs tasks with the same number of ways, got {sorted(ways)}")
        stacked = [torch.stack([getattr(t, f) for t in tasks]) for f in ("support_x", "support_y", "query_x", "query_y")]

        def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
            outputs = self.predict(self.fast_weights(sx, sy, *ways, check_finite=False), qx)
            return self.query_loss(outputs, qy), outputs

        losses, outputs = torch.func.vmap(one_task)(*stacked)
        if not bool(torch.isfinite(losses).all()):
            raise FloatingPointError("a task's query loss is not finite after the inner loop; lower the inner learning rate")
        return MetaLoss(losses.mean(), accuracy(outputs, stacked[3]))
