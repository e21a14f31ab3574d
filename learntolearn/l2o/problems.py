"""Optimizee families for learned optimizers (Andrychowicz et al. 2016, Section 3).

A :class:`Problem` draws instances; an instance is a list of initial parameter tensors and a loss
function of such a list. Instances of a batch are independent problems stacked along a leading
dimension, and the loss is their *sum*, so each problem's gradient is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.data import load_dataset

Loss = Callable[[list[Tensor]], Tensor]


class Problem(Protocol):
    def sample(self, batch: int, generator: torch.Generator) -> tuple[list[Tensor], Loss]:
        """Initial parameters and the summed loss of ``batch`` independent problem instances."""


class Quadratics:
    """``f(theta) = ||W theta - y||^2`` with ``W`` (dim x dim), ``y`` and the start ``theta`` i.i.d. N(0, 1) (Section 3.1)."""

    def __init__(self, dim: int = 10) -> None:
        self.dim = dim

    def sample(self, batch: int, generator: torch.Generator) -> tuple[list[Tensor], Loss]:
        w = torch.randn(batch, self.dim, self.dim, generator=generator)
        y = torch.randn(batch, self.dim, generator=generator)
        theta = torch.randn(batch, self.dim, generator=generator)

        def loss(params: list[Tensor]) -> Tensor:
            return (torch.einsum("bij,bj->bi", w, params[0]) - y).pow(2).sum()

        return [theta], loss


class GlyphMLP:
    """A one-hidden-layer sigmoid MLP (20 units) classifying ``ways`` glyph classes from 16x16 images,
    trained on fixed minibatches: the paper's MNIST MLP setting (Section 3.2) on our generated glyphs.
    ``subset`` picks the classes (train for meta-training, test for held-out problems)."""

    def __init__(self, subset: str = "train", ways: int = 10, hidden: int = 20, batch_size: int = 64) -> None:
        self.data = load_dataset("synthetic", "default", subset, image_size=16)
        self.ways, self.hidden, self.batch_size = ways, hidden, batch_size

    def sample(self, batch: int, generator: torch.Generator) -> tuple[list[Tensor], Loss]:
        classes = torch.stack(
            [torch.randperm(self.data.n_classes, generator=generator)[: self.ways] for _ in range(batch)]
        )
        counts = self.data.counts[classes]
        picks = (torch.rand(batch, self.batch_size, generator=generator) * self.ways).long()
        within = (torch.rand(batch, self.batch_size, generator=generator) * counts.gather(1, picks)).long()
        index = self.data.offsets[classes.gather(1, picks)] + within
        x = self.data.to_float(index).flatten(2)
        d = x.shape[-1]
        params = [
            torch.randn(batch, d, self.hidden, generator=generator) * d**-0.5,
            torch.zeros(batch, self.hidden),
            torch.randn(batch, self.hidden, self.ways, generator=generator) * self.hidden**-0.5,
            torch.zeros(batch, self.ways),
        ]

        def loss(p: list[Tensor]) -> Tensor:
            h = torch.sigmoid(torch.bmm(x, p[0]) + p[1].unsqueeze(1))
            logits = torch.bmm(h, p[2]) + p[3].unsqueeze(1)
            return F.cross_entropy(logits.flatten(0, 1), picks.flatten(), reduction="sum") / self.batch_size

        return params, loss
