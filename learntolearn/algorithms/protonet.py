"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean of its support embeddings (Eq. 1), and a query is classified
by a softmax over negative squared Euclidean distances to the prototypes (Eq. 2). Meta-training
minimises the query cross-entropy; support and query images of all tasks in a batch go through the
backbone in one pass. ``distance="cosine"`` ranks prototypes by cosine similarity instead (the
nearest-class-mean rule on sentence embeddings), ``"scaled-cosine"`` with a learned scale for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, EmbeddingAlgorithm, ModelSetting, flat_embeddings
from learntolearn.errors import ConfigError
from learntolearn.nn.distances import cosine_similarity, prototypes, squared_euclidean
from learntolearn.settings import setting

DISTANCES = ("euclidean", "cosine", "scaled-cosine")


@dataclass(frozen=True)
class ProtoNetConfig(AlgorithmConfig):
    """Prototypical Networks' settings."""

    section = "protonet"

    distance: str = setting(
        "euclidean", "Distance between queries and prototypes (the paper: squared euclidean).", choices=DISTANCES
    )


@ALGORITHMS.register("protonet")
class PrototypicalNetworks(EmbeddingAlgorithm):
    """Prototypical Networks over any backbone that maps a batch of inputs to flat embeddings."""

    Config = ProtoNetConfig

    def __init__(self, backbone: nn.Module, *, distance: str = "euclidean") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ConfigError(f"unknown distance {distance!r}; choose from {', '.join(DISTANCES)}")
        self.backbone, self.distance = backbone, distance
        self.scale = nn.Parameter(torch.tensor(10.0)) if distance == "scaled-cosine" else None

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> PrototypicalNetworks:
        return cls(backbone, **config.to_dict())

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "Prototypical Networks")

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        centres = prototypes(support, support_y, ways)
        if self.distance == "euclidean":
            return -squared_euclidean(query, centres)
        similarity = cosine_similarity(query, centres)
        return similarity if self.scale is None else self.scale * similarity
