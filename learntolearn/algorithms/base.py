"""The one interface every meta-learning algorithm implements.

All three families fit it: ``adapt`` turns a support set into an *adapted state* (fast weights for
MAML, class prototypes for Prototypical Networks, a filled memory for a memory-augmented network)
and ``predict`` maps queries through that state. ``meta_loss`` is what meta-training minimises over
a batch of tasks; its default adapts and predicts each task and takes the query cross-entropy, and
algorithms override it where training differs from testing (Reptile's outer update, first-order
shortcuts, one batched forward pass).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.errors import ConfigError, TaskError
from learntolearn.nn.backbones import ConvNet
from learntolearn.registry import Registry
from learntolearn.settings import Settings
from learntolearn.types import Task

ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class AlgorithmConfig(Settings):
    """An algorithm's own settings; each algorithm declares its subclass as ``Config`` (this one is empty)."""

    section = "algorithm"


@dataclass(frozen=True)
class ModelSetting:
    """What building an algorithm needs besides its own settings: the backbone's output and the episodes."""

    #: the backbone's output shape for one input
    output_shape: tuple[int, ...]
    #: ways of the evaluation episodes (the head size of fixed-ways algorithms)
    ways: int
    #: the most ways any training or evaluation episode has
    max_ways: int
    #: classes of the training split (the head size of supervised pre-training)
    train_classes: int
    #: ``float32``, or ``bfloat16`` mixed precision where the algorithm supports it
    precision: str = "float32"
    #: the tasks are regressions (float targets, ``ways`` outputs of squared error) rather than classifications
    regression: bool = False


@dataclass(frozen=True)
class MetaLoss:
    """Mean query loss over a task batch (differentiable) and the mean query accuracy (NaN for regression)."""

    loss: Tensor
    accuracy: float


class Algorithm(nn.Module, abc.ABC):
    """Base class: implement ``adapt`` and ``predict``; override ``meta_loss`` when training differs.

    An algorithm declares its settings as ``Config`` (a frozen :class:`AlgorithmConfig`) and what it
    can do as class attributes, which the engine reads instead of algorithm names.
    """

    #: the algorithm's own settings
    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    #: ``adapt`` needs autograd (gradient steps on the support set); the evaluator then keeps it on
    adapts_by_gradient: ClassVar[bool] = False
    #: one output per way, trained for one number of ways: every task must have that many
    fixed_ways: ClassVar[bool] = False
    #: the meta-loss is a mean of independent per-task losses, so backpropagating a meta-batch in chunks
    #: gives the same gradient (BatchNorm over a metric learner's whole batch is not independent per task)
    per_task_meta_loss: ClassVar[bool] = False
    #: the values of the run's ``precision`` the algorithm supports
    precisions: ClassVar[tuple[str, ...]] = ("float32",)
    #: needs a backbone that returns feature maps ``(C, H, W)`` rather than flat embeddings
    needs_feature_maps: ClassVar[bool] = False
    #: can learn regression tasks (float targets, squared error) as well as classifications
    supports_regression: ClassVar[bool] = False
    #: raised when what the algorithm scores on a given checkpoint and episode changes, so that cached
    #: table evaluations are redone
    evaluation_version: ClassVar[int] = 1
    #: where the algorithm's own random draws (shuffles in training) come from; None: torch's global generator
    generator: torch.Generator | None = None

    def permutation(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """A random order of ``n`` items, drawn from :attr:`generator`."""
        if self.generator is None:
            return torch.randperm(n, device=device)
        return torch.randperm(n, generator=self.generator).to(device)

    @classmethod
    def build(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> Algorithm:
        """The algorithm with its settings around ``backbone``, after checking that it supports the setting."""
        if not isinstance(config, cls.Config):
            raise ConfigError(f"{cls.__name__} takes a {cls.Config.__name__}, got a {type(config).__name__}")
        if setting.regression and not cls.supports_regression:
            raise ConfigError(
                f"{cls.__name__} classifies; these tasks are regressions: use an algorithm that "
                f"supports them (maml, anil, metasgd, reptile)"
            )
        if setting.precision not in cls.precisions:
            raise ConfigError(
                f"{cls.__name__} supports precision {' and '.join(cls.precisions)}, not "
                f"{setting.precision}; leave precision at float32"
            )
        return cls.from_config(config, cls.prepare_backbone(backbone, setting), setting)

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, setting: ModelSetting) -> nn.Module:
        """The backbone as this algorithm runs it: with bfloat16 autocast in its convolutions when asked."""
        if setting.precision == "bfloat16":
            if not isinstance(backbone, ConvNet):
                raise ConfigError(
                    f"precision bfloat16 needs a convolutional backbone (conv4, conv4-maps, ...), not "
                    f"{type(backbone).__name__}"
                )
            backbone.use_bfloat16()
        return backbone

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> Algorithm:
        """Build from the algorithm's settings, a prepared backbone and the model setting."""
        return cls(backbone)

    @abc.abstractmethod
    def adapt(self, support_x: Tensor, support_y: Tensor) -> Any:
        """Adapt to a support set of shape ``(N*K, *input_shape)`` with labels in ``0..N-1``."""

    @abc.abstractmethod
    def predict(self, adapted: Any, query_x: Tensor) -> Tensor:
        """Logits of shape ``(n_query, N)`` for queries, given the result of :meth:`adapt`."""

    def query_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The loss of predictions on queries; cross-entropy unless an algorithm says otherwise."""
        return F.cross_entropy(outputs, targets)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Class probabilities of :meth:`predict`'s outputs (softmax of logits unless an algorithm says otherwise)."""
        return outputs.softmax(-1)

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        losses, accuracies = [], []
        for task in tasks:
            check_query(task.support_x, task.query_x)
            outputs = self.predict(self.adapt(task.support_x, task.support_y), task.query_x)
            losses.append(self.query_loss(outputs, task.query_y))
            accuracies.append(accuracy(outputs, task.query_y))
        return MetaLoss(torch.stack(losses).mean(), sum(accuracies) / len(accuracies))


def accuracy(outputs: Tensor, targets: Tensor) -> float:
    """Fraction of argmax predictions equal to integer targets; NaN for regression targets."""
    if targets.is_floating_point():
        return float("nan")
    return float((outputs.argmax(-1) == targets).float().mean())


def check_support(support_x: Tensor, support_y: Tensor) -> int:
    """Validate a classification support set and return its number of ways N.

    Labels must be integers covering exactly ``0..N-1`` (every class has at least one example).
    """
    if support_y.dtype not in (torch.int64, torch.int32):
        raise TaskError(f"support labels must be integer class indices, got dtype {support_y.dtype}")
    if support_y.dim() != 1 or support_y.shape[0] != support_x.shape[0]:
        raise TaskError(
            f"support labels must be a vector with one label per support example: "
            f"got labels of shape {tuple(support_y.shape)} for {support_x.shape[0]} examples"
        )
    if support_y.numel() == 0:
        raise TaskError("the support set is empty")
    present = torch.unique(support_y)
    ways = int(present.max()) + 1
    if int(present.min()) < 0 or present.numel() != ways:
        missing = sorted(set(range(ways)) - set(present.tolist()))
        raise TaskError(
            f"support labels must be 0..N-1 with every class present; got labels {present.tolist()}"
            + (f" (no support example for class {missing})" if missing else "")
        )
    return ways


def check_query(support_x: Tensor, query_x: Tensor) -> None:
    if support_x.shape[1:] != query_x.shape[1:]:
        raise TaskError(
            f"support and query inputs differ in shape: {tuple(support_x.shape[1:])} vs {tuple(query_x.shape[1:])}"
        )


class EmbeddingAlgorithm(Algorithm):
    """Metric-based algorithms: embed support and queries with one network, then ``compare`` them.

    ``adapt`` embeds the support set and ``predict`` compares query embeddings with it. ``meta_loss``
    embeds the support and query images of every task in *one* pass: faster, and in training mode
    BatchNorm then normalises support and queries with the same batch statistics, as the reference
    implementations do (a separate pass would normalise a 1-shot support set by N images alone).
    """

    precisions = PRECISIONS

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, setting: ModelSetting) -> nn.Module:
        """As for every algorithm, and a conv net's blocks fused in training."""
        backbone = super().prepare_backbone(backbone, setting)
        return backbone.use_fused_blocks() if isinstance(backbone, ConvNet) else backbone

    @abc.abstractmethod
    def embed(self, x: Tensor) -> Tensor:
        """Embeddings of a batch of inputs."""

    @abc.abstractmethod
    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        """Outputs ``(n_query, ways)`` for query embeddings, given the support embeddings and labels."""

    def episode_loss(
        self, support: Tensor, support_y: Tensor, ways: int, query: Tensor, query_y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Training loss of one episode and its outputs (for accuracy); query loss of ``compare`` by default."""
        outputs = self.compare(support, support_y, ways, query)
        return self.query_loss(outputs, query_y), outputs

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[Tensor, Tensor, int]:
        ways = check_support(support_x, support_y)
        return self.embed(support_x), support_y, ways

    def predict(self, adapted: tuple[Tensor, Tensor, int], query_x: Tensor) -> Tensor:
        support, support_y, ways = adapted
        return self.compare(support, support_y, ways, self.embed(query_x))

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        ways = []
        for task in tasks:
            ways.append(check_support(task.support_x, task.support_y))
            check_query(task.support_x, task.query_x)
        embeddings = self.embed(torch.cat([x for t in tasks for x in (t.support_x, t.query_x)]))
        losses, accuracies, start = [], [], 0
        for task, n_ways in zip(tasks, ways):
            n_support, n_query = task.support_x.shape[0], task.query_x.shape[0]
            support = embeddings[start : start + n_support]
            query = embeddings[start + n_support : start + n_support + n_query]
            start += n_support + n_query
            loss, outputs = self.episode_loss(support, task.support_y, n_ways, query, task.query_y)
            losses.append(loss)
            accuracies.append(accuracy(outputs.detach(), task.query_y))
        return MetaLoss(torch.stack(losses).mean(), sum(accuracies) / len(accuracies))


def flat_embeddings(z: Tensor, algorithm: str) -> Tensor:
    """``z`` if it is a batch of flat embeddings ``(batch, dim)``, else a clear error."""
    if z.dim() != 2:
        raise TaskError(
            f"{algorithm} needs a backbone that returns flat embeddings of shape (batch, dim), got "
            f"{tuple(z.shape)}; end it with nn.Flatten()"
        )
    return z
