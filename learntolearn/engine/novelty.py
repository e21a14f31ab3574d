"""Is a query like any of the given classes? A novelty test calibrated on the support set alone.

A classifier's confidence says which of the given classes a query is closest to, not whether it
belongs to any of them: a blank image or an unrelated sentence still gets a class, often with a
high probability. The novelty score here is the cosine similarity of a query's embedding to the
nearest class mean of the support embeddings (the prototype distance of Snell et al. 2017, in
cosine form). (Centring the embeddings on the support mean first, as SimpleShot does for
classification, made the leave-one-out threshold too noisy to reject anything with a few examples.) Its threshold comes from the support set by leave-one-out: each example is compared
with the class means computed without it (its own class's mean from its other examples, if any;
with one example per class, only the other classes), and the threshold is the lowest of those
similarities. A query is novel when it is less similar to every class than each of the user's
examples is to the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.errors import TaskError


def unit_vectors(embeddings: Tensor) -> Tensor:
    """Embeddings flattened and scaled to unit length."""
    return F.normalize(embeddings.flatten(1).float(), dim=-1)


def class_means(unit: Tensor, labels: Tensor, classes: int) -> Tensor:
    """Unit-length mean of each class's unit vectors, ``(classes, dim)``."""
    return F.normalize(torch.zeros(classes, unit.shape[1]).index_add_(0, labels, unit), dim=-1)


def leave_one_out_similarities(unit: Tensor, labels: Tensor) -> Tensor:
    """For each support example, the similarity to its nearest class mean computed without it."""
    classes = int(labels.max()) + 1
    if classes < 2:
        raise TaskError("a novelty threshold needs examples of at least 2 classes")
    sums = torch.zeros(classes, unit.shape[1]).index_add_(0, labels, unit)
    counts = torch.bincount(labels, minlength=classes)
    similarities = []
    for vector, label in zip(unit, labels.tolist()):
        held_out = sums.clone()
        held_out[label] -= vector
        available = counts.clone()
        available[label] -= 1
        means = F.normalize(held_out[available > 0], dim=-1)
        similarities.append((means @ vector).max())
    return torch.stack(similarities)


@dataclass(frozen=True)
class NoveltyTest:
    """The support set's class means and the leave-one-out threshold below which a query is novel."""

    means: Tensor
    threshold: float

    @classmethod
    def fit(cls, embeddings: Tensor, labels: Tensor) -> NoveltyTest:
        unit = unit_vectors(embeddings)
        threshold = float(leave_one_out_similarities(unit, labels).min())
        return cls(class_means(unit, labels, int(labels.max()) + 1), threshold)

    def similarity(self, embeddings: Tensor) -> Tensor:
        """Cosine similarity of each embedding to its nearest class mean."""
        return (unit_vectors(embeddings) @ self.means.T).max(-1).values

    def is_novel(self, similarity: Tensor) -> Tensor:
        return similarity < self.threshold


def embedding_function(algorithm: object, what: str) -> Callable[[Tensor], Tensor]:
    """The algorithm's ``embed`` (its features before the classifier), or an error naming what needs it."""
    embed = getattr(algorithm, "embed", None)
    if embed is None:
        raise TaskError(
            f"{what} needs a model that embeds its inputs, which a {type(algorithm).__name__} does not; "
            f"use a model of another algorithm (e.g. protonet or maml)"
        )
    return embed
