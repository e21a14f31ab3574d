"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean of its support embeddings (Eq. 1), and a query is classified
by a softmax over negative squared Euclidean distances to the prototypes (Eq. 2). Meta-training
minimises the query cross-entropy; support and query images of all tasks in a batch go through the
backbone in one pass.
"""

from __future__ import annotations

from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, EmbeddingAlgorithm, flat_embeddings
from learntolearn.nn.distances import prototypes, squared_euclidean


@ALGORITHMS.register("protonet")
class PrototypicalNetworks(EmbeddingAlgorithm):
    """Prototypical Networks over any backbone that maps a batch of inputs to flat embeddings."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "Prototypical Networks")

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        return -squared_euclidean(query, prototypes(support, support_y, ways))
