"""How a gradient learner evaluates a batch of tasks in meta-training: a loop, vmap, or compiled graphs.

All three compute the same meta-loss (tested against finite differences and a hand-unrolled
reference); they differ in speed and in what they need:

- :class:`TaskLoop`: one task after another in Python; checks every inner loss as it goes.
- :class:`VmappedTasks`: the task batch through ``torch.func.vmap``. It needs BatchNorm in decomposed
  form (the fused kernel's batching rule gave wrong second-order meta-gradients with per-task affine
  parameters) and the default memory layout, so :meth:`Execution.prepare` converts the model.
- :class:`CompiledTasks`: the task loop through ``torch.compile`` graphs, compiled at the first step
  (and again if the task shapes change), which fuse the many small operations of small tasks
  (``benchmarks/maml_peers.py``). Each graph unrolls ``tasks_per_graph`` consecutive tasks of equal
  shapes, so Dynamo's guards and the autograd bookkeeping around a graph run once per group instead of
  once per task; more tasks per graph compile longer (``benchmarks/compiled_maml.py`` measures the
  trade). Evaluation runs the task loop. The graphs keep ReLU's backward masks as floats and
  max-pooling's backward in PyTorch's kernel (:mod:`learntolearn.nn.compile`). Each learner compiles its
  own copy of :meth:`~learntolearn.algorithms.gradient.GradientLearner.tasks_loss`, so instances do not
  share Dynamo's cache.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import MetaLoss, accuracy, check_query
from learntolearn.errors import ConfigError, TaskError
from learntolearn.nn.backbones import ConvNet
from learntolearn.nn.batchnorm import use_batch_statistics
from learntolearn.nn.compile import compile_method
from learntolearn.types import Task

if TYPE_CHECKING:
    from learntolearn.algorithms.gradient import GradientLearner

TasksLoss = Callable[..., tuple[Tensor, Tensor]]


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


class Execution(abc.ABC):
    """A way to evaluate a learner's meta-loss over a batch of tasks."""

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` (changed in place) as this execution runs it: BatchNorm on batch statistics."""
        return use_batch_statistics(model)

    @abc.abstractmethod
    def meta_loss(self, learner: GradientLearner, tasks: Sequence[Task]) -> MetaLoss:
        """Mean query loss of ``learner`` over ``tasks`` (differentiable) and mean query accuracy."""


class TaskLoop(Execution):
    """One task after another, each inner loss checked as it is computed."""

    def meta_loss(self, learner: GradientLearner, tasks: Sequence[Task]) -> MetaLoss:
        losses, accuracies = [], []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            ways = learner.check_task(task.support_x, task.support_y)
            loss, outputs = learner.task_loss(
                task.support_x, task.support_y, task.query_x, task.query_y, ways, check_finite=True
            )
            losses.append(loss)
            accuracies.append(accuracy(outputs, task.query_y))
        return MetaLoss(torch.stack(losses).mean(), sum(accuracies) / len(accuracies))


class VmappedTasks(Execution):
    """The whole task batch through ``torch.func.vmap`` (tasks of one shape and one number of ways)."""

    def prepare(self, model: nn.Module) -> nn.Module:
        model = use_batch_statistics(model, decomposed=True)
        for module in model.modules():
            if isinstance(module, ConvNet):
                module.use_contiguous_layout()
        return model

    def meta_loss(self, learner: GradientLearner, tasks: Sequence[Task]) -> MetaLoss:
        ways = {learner.check_task(t.support_x, t.support_y) for t in tasks}
        for task in tasks:
            check_query(task.support_x, task.query_x)
        if len(ways) != 1:
            raise TaskError(
                f"batched=True needs tasks with the same number of ways, got {sorted(w or 0 for w in ways)}"
            )
        stacked = stack_tasks(tasks)
        vmapped: TasksLoss = torch.func.vmap(learner.task_loss, in_dims=(0, 0, 0, 0, None))
        losses, outputs = vmapped(*stacked, ways.pop())
        return MetaLoss(finite(losses).mean(), accuracy(outputs, stacked[3]))


class CompiledTasks(Execution):
    """Meta-training through ``torch.compile`` graphs of ``tasks_per_graph`` equally shaped tasks each."""

    def __init__(self, tasks_per_graph: int) -> None:
        if tasks_per_graph < 1:
            raise ConfigError(f"tasks_per_graph must be >= 1, got {tasks_per_graph}")
        self.tasks_per_graph = tasks_per_graph
        #: the learner's compiled ``tasks_loss``, made at the first training step
        self.graphs: TasksLoss | None = None

    def meta_loss(self, learner: GradientLearner, tasks: Sequence[Task]) -> MetaLoss:
        if not learner.training:
            return TaskLoop().meta_loss(learner, tasks)
        if self.graphs is None:
            self.graphs = compile_method(learner.tasks_loss)
        groups: list[tuple[int | None, list[Task]]] = []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            ways = learner.check_task(task.support_x, task.support_y)
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
        for ways, group in groups:
            stacked = stack_tasks(group)
            loss, outputs = self.graphs(*stacked, ways)
            losses.append(loss)
            accuracies += [accuracy(task_outputs, targets) for task_outputs, targets in zip(outputs, stacked[3])]
        return MetaLoss(finite(torch.cat(losses)).mean(), sum(accuracies) / len(accuracies))
