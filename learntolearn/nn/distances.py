"""Distances and class prototypes as small pure functions."""

from __future__ import annotations

import torch
from torch import Tensor


def prototypes(embeddings: Tensor, labels: Tensor, ways: int) -> Tensor:
    """Mean embedding of each class: ``(n, d)`` embeddings, labels in ``0..ways-1`` -> ``(ways, d)``.

    Snell et al. 2017, Eq. 1.
    """
    sums = torch.zeros(ways, embeddings.shape[-1], dtype=embeddings.dtype, device=embeddings.device)
    sums.index_add_(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=ways).clamp_min(1).to(embeddings.dtype)
    return sums / counts.unsqueeze(1)


def squared_euclidean(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances: ``(n, d)``, ``(m, d)`` -> ``(n, m)``."""
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(-1)


def cosine_similarity(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Pairwise cosine similarities: ``(n, d)``, ``(m, d)`` -> ``(n, m)``."""
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(eps)
    y = y / y.norm(dim=-1, keepdim=True).clamp_min(eps)
    return x @ y.transpose(-1, -2)
