"""Siamese Networks for one-shot recognition (Koch, Zemel & Salakhutdinov, ICML 2015 workshop).

A twin network embeds two images; the weighted L1 distance between the embeddings goes through a
sigmoid to give the probability that they show the same class (Eq. 1). Training is verification:
binary cross-entropy on same/different pairs, here every (query, support) pair of an episode
(Section 3.2 trains on sampled pairs). For N-way one-shot classification a query takes the class
of its most similar support image (Section 4.2); with several shots, a class scores the maximum
over its images. Deviation: the twin is the shared backbone (conv4 at 28x28) instead of the
paper's 105x105 network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, EmbeddingAlgorithm, ModelSetting, flat_embeddings
from learntolearn.errors import ConfigError


@ALGORITHMS.register("siamese")
class SiameseNetworks(EmbeddingAlgorithm):
    """Verification network over a flat-embedding backbone; logits are same-class log-odds."""

    def __init__(self, backbone: nn.Module, embedding_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.weighted_l1 = nn.Linear(embedding_dim, 1)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> SiameseNetworks:
        if len(setting.output_shape) != 1:
            raise ConfigError(f"Siamese Networks need flat embeddings, got output shape {setting.output_shape}")
        return cls(backbone, setting.output_shape[0])

    def pair_logits(self, a: Tensor, b: Tensor) -> Tensor:
        """Same-class log-odds of every pair: ``(n, d)``, ``(m, d)`` -> ``(n, m)``."""
        return self.weighted_l1((a.unsqueeze(1) - b.unsqueeze(0)).abs()).squeeze(-1)

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "Siamese Networks")

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        return class_scores(self.pair_logits(query, support), support_y, ways)

    def episode_loss(
        self, support: Tensor, support_y: Tensor, ways: int, query: Tensor, query_y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Verification: binary cross-entropy on every (query, support) pair being same-class."""
        pairs = self.pair_logits(query, support)
        same = (query_y.unsqueeze(1) == support_y.unsqueeze(0)).to(pairs.dtype)
        return F.binary_cross_entropy_with_logits(pairs, same), class_scores(pairs, support_y, ways)


def class_scores(pairs: Tensor, labels: Tensor, ways: int) -> Tensor:
    """Each class's best pair score: ``(n_query, n_support)`` -> ``(n_query, ways)``."""
    scores = torch.full((pairs.shape[0], ways), float("-inf"), dtype=pairs.dtype, device=pairs.device)
    return scores.scatter_reduce(1, labels.expand_as(pairs), pairs, reduce="amax")
