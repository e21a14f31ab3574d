"""The class-incremental protocol of OML and ANML, and online learners that learn a stream one image at a time.

Meta-test (Javed & White 2019; Beaulieu et al. 2020): ``C`` classes never seen in meta-training, each with
``train_per_class`` images to learn from (ANML: 15 of Omniglot's 20) and the rest held out; the classes
arrive one after another, every training image once, one optimiser step per image on the fast parameters;
then accuracy on all ``C`` classes' training images (memorisation) and held-out images (generalisation).

:class:`OnlineLearner` takes those steps on parameter dicts (gradients of the fast parameters only, SGD or
Adam state kept in tensors, no optimiser objects), :class:`NearestMean` is the non-forgetting reference (class means of a frozen
embedding, as ProtoNets classify).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.algorithms.inner import Params
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.errors import DataError, TaskError

Logits = Callable[[Params, Tensor], Tensor]


@dataclass(frozen=True)
class ClassIncrementalSplit:
    """Per-class images ``[classes, images, 1, H, W]`` (floats in [0, 1]) to learn from and held out."""

    train: Tensor
    held_out: Tensor
    class_names: tuple[str, ...]


def split_classes(dataset: ImageClassDataset, train_per_class: int = 15, seed: int = 0) -> ClassIncrementalSplit:
    """Deal each class's images into ``train_per_class`` to learn from and the rest held out (seeded)."""
    counts = dataset.offsets.diff()
    for index, count in enumerate(counts.tolist()):
        if count <= train_per_class:
            raise DataError(
                f"class {dataset.class_names[index]} has {count} images: none would be held out after "
                f"{train_per_class} to learn from; lower train_per_class or drop the class"
            )
    if len(set(counts.tolist())) != 1:
        raise DataError("every class needs the same number of images for this protocol")
    images = dataset.to_float(torch.arange(len(dataset.images)))
    per_class = images.reshape(len(counts), int(counts[0]), *dataset.image_shape)
    return deal(per_class, train_per_class, seed, dataset.class_names)


def deal(
    images: Tensor, train_per_class: int, seed: int, class_names: tuple[str, ...] | None = None
) -> ClassIncrementalSplit:
    """Split ``[classes, images, ...]`` per class, in a seeded random order, into images to learn and held out."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(images.shape[1], generator=generator) for _ in range(len(images))])
    shuffled = images[torch.arange(len(images))[:, None], order]
    names = class_names or tuple(str(i) for i in range(len(images)))
    return ClassIncrementalSplit(shuffled[:, :train_per_class], shuffled[:, train_per_class:], names)


def class_orders(classes: int, count: int, orders: int, seed: int) -> list[Tensor]:
    """``orders`` random sequences of ``count`` of ``classes`` classes (seeds ``seed``, ``seed + 1``, ...)."""
    if count > classes:
        raise TaskError(f"a stream of {count} classes needs that many; this split has {classes}")
    return [torch.randperm(classes, generator=torch.Generator().manual_seed(seed + r))[:count] for r in range(orders)]


def check_batch(images: Tensor, labels: Tensor, outputs: int) -> None:
    if not torch.isfinite(images).all():
        raise TaskError("an input image has NaN or infinite pixels; check the stream's preprocessing")
    if labels.numel() and (labels.min() < 0 or labels.max() >= outputs):
        raise TaskError(
            f"label {int(labels.max())} is outside this learner's {outputs} outputs (0 to {outputs - 1}); "
            f"build it with more classes or relabel the stream from 0"
        )


@dataclass
class OnlineLearner:
    """Learns a stream: ``observe(images, labels)`` takes one step on the fast parameters per call.

    The fast parameters are the learner's own copies, updated in place (no optimiser objects, no new tensors
    per step); the others are shared with ``params`` and never change."""

    logits: Logits
    params: Params
    fast: Collection[str]
    lr: float
    optimizer: str = "sgd"  # or "adam" (what OML's and ANML's evaluation code uses)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    steps: int = 0
    moments: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    outputs: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise TaskError(f"unknown online optimizer {self.optimizer!r}; choose sgd or adam")
        self.fast = tuple(self.fast)
        unknown = [n for n in self.fast if n not in self.params]
        if unknown:
            raise TaskError(f"fast parameters {unknown} are not among the network's ({', '.join(self.params)})")
        self.params = {
            n: v.detach().clone().requires_grad_(True) if n in self.fast else v.detach() for n, v in self.params.items()
        }
        self._fast = [self.params[n] for n in self.fast]

    def observe(self, images: Tensor, labels: Tensor) -> None:
        if self.outputs is None:
            with torch.no_grad():
                self.outputs = int(self.logits(self.params, images[:1]).shape[-1])
        check_batch(images, labels, self.outputs)
        loss = F.cross_entropy(self.logits(self.params, images), labels)
        grads = torch.autograd.grad(loss, self._fast)
        self.steps += 1
        with torch.no_grad():
            if self.optimizer == "sgd":
                for param, grad in zip(self._fast, grads):
                    param.add_(grad, alpha=-self.lr)
                return
            scale = math.sqrt(1 - self.betas[1] ** self.steps)
            step = self.lr / (1 - self.betas[0] ** self.steps)
            for name, param, grad in zip(self.fast, self._fast, grads):
                if name not in self.moments:
                    self.moments[name] = (torch.zeros_like(grad), torch.zeros_like(grad))
                first, second = self.moments[name]
                first.mul_(self.betas[0]).add_(grad, alpha=1 - self.betas[0])
                second.mul_(self.betas[1]).addcmul_(grad, grad, value=1 - self.betas[1])
                param.addcdiv_(first, second.sqrt().div_(scale).add_(self.eps), value=-step)

    def predict(self, images: Tensor, batch: int = 500) -> Tensor:
        with torch.no_grad():
            return torch.cat([self.logits(self.params, part).argmax(-1) for part in images.split(batch)])


@dataclass
class NearestMean:
    """Classifies by the nearest class mean of a frozen embedding; learning a class never changes another's."""

    embed: Callable[[Tensor], Tensor]
    sums: dict[int, Tensor] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)

    def observe(self, images: Tensor, labels: Tensor) -> None:
        if not torch.isfinite(images).all():
            raise TaskError("an input image has NaN or infinite pixels; check the stream's preprocessing")
        with torch.no_grad():
            embedded = self.embed(images)
        for row, label in zip(embedded, labels.tolist()):
            self.sums[label] = self.sums.get(label, torch.zeros_like(row)) + row
            self.counts[label] = self.counts.get(label, 0) + 1

    def predict(self, images: Tensor, batch: int = 500) -> Tensor:
        labels = sorted(self.sums)
        means = torch.stack([self.sums[label] / self.counts[label] for label in labels])
        with torch.no_grad():
            embedded = torch.cat([self.embed(part) for part in images.split(batch)])
        return torch.tensor(labels)[torch.cdist(embedded, means).argmin(-1)]


Learner = OnlineLearner | NearestMean


def learn_stream(learner: Learner, split: ClassIncrementalSplit, classes: Tensor) -> dict[str, float]:
    """Show ``classes`` (indices into ``split``) one after another, each training image once (the i-th class
    gets label i); memorisation and generalisation accuracy over all of them afterwards."""
    for label, index in enumerate(classes.tolist()):
        for image in split.train[index]:
            learner.observe(image[None], torch.tensor([label]))
    scores = {}
    for name, images in (("memorisation", split.train), ("generalisation", split.held_out)):
        chosen = images[classes]
        labels = torch.arange(len(classes)).repeat_interleave(chosen.shape[1])
        predicted = learner.predict(chosen.flatten(0, 1))
        scores[name] = (predicted == labels).float().mean().item()
    return scores


Curves = dict[str, dict[str, list[float]]]


def continual_curves(
    make: Callable[[], Learner], split: ClassIncrementalSplit, counts: list[int], orders: int, seed: int
) -> Curves:
    """Both accuracies of a fresh learner per stream, for ``orders`` random orders of each number of classes."""
    curves: Curves = {}
    for count in counts:
        entry: dict[str, list[float]] = {"memorisation": [], "generalisation": []}
        for order in class_orders(len(split.train), count, orders, seed):
            for key, value in learn_stream(make(), split, order).items():
                entry[key].append(value)
        curves[str(count)] = entry
    return curves


#: online rates the protocol chooses from on meta-validation classes
RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def choose_rate(
    make: Callable[[float], Learner], validation: ClassIncrementalSplit, count: int, orders: int, seed: int
) -> float:
    """The rate of :data:`RATES` with the best mean memorisation on ``validation`` streams of ``count`` classes."""
    streams = class_orders(len(validation.train), count, orders, seed)

    def score(rate: float) -> float:
        return sum(learn_stream(make(rate), validation, order)["memorisation"] for order in streams)

    return max(RATES, key=score)
