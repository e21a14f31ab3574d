"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean of its support embeddings (Eq. 1), and a query is classified
by a softmax over negative squared Euclidean distances to the prototypes (Eq. 2). Meta-training
minimises the query cross-entropy; support and query images of all tasks in a batch go through the
backbone in one pass.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, Algorithm, MetaLoss, accuracy, check_query, check_support
from learntolearn.nn.distances import prototypes, squared_euclidean
from learntolearn.types import Task


@ALGORITHMS.register("protonet")
class PrototypicalNetworks(Algorithm):
    """Prototypical Networks over any backbone that maps a batch of inputs to flat embeddings."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        if z.dim() != 2:
            raise ValueError(
                f"the backbone must return flat embeddings of shape (batch, dim), got {tuple(z.shape)}; "
                f"end it with nn.Flatten()"
            )
        return z

    def adapt(self, support_x: Tensor, support_y: Tensor) -> Tensor:
        ways = check_support(support_x, support_y)
        return prototypes(self.embed(support_x), support_y, ways)

    def predict(self, adapted: Tensor, query_x: Tensor) -> Tensor:
        return -squared_euclidean(self.embed(query_x), adapted)

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
            logits = -squared_euclidean(query, prototypes(support, task.support_y, n_ways))
            losses.append(F.cross_entropy(logits, task.query_y))
            accuracies.append(accuracy(logits, task.query_y))
        return MetaLoss(torch.stack(losses).mean(), sum(accuracies) / len(accuracies))
