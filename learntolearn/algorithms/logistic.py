"""Logistic regression on frozen features, fitted on each support set: the standard linear probe.

Per task, a multinomial logistic regression ``softmax(W f(x) + b)`` on the backbone's features of the
support set minimises the mean cross-entropy plus ``||W||^2 / (2 C n)`` (scikit-learn's
``LogisticRegression(C)`` objective divided by the number of examples ``n``), by L-BFGS from zero.
Nothing is meta-trained: it is the zero-training comparison for embeddings from a pretrained encoder
(Tian et al. 2020, "Rethinking Few-Shot Image Classification", use the same probe). Not in the
``ALGORITHMS`` registry, which lists what ``ltl train`` can meta-train.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import Algorithm, MetaLoss, check_query, check_support
from learntolearn.types import Task


class LogisticRegressionProbe(Algorithm):
    """A new L2-regularised logistic regression head per task on ``backbone`` features (frozen)."""

    adapts_by_gradient = True

    def __init__(
        self, backbone: nn.Module | None = None, *, inverse_regularization: float = 1.0, max_iterations: int = 100
    ) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else nn.Identity()
        self.inverse_regularization, self.max_iterations = inverse_regularization, max_iterations

    def embed(self, x: Tensor) -> Tensor:
        """The frozen backbone's features."""
        return self.backbone(x).flatten(1)

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[Tensor, Tensor]:
        ways = check_support(support_x, support_y)
        with torch.no_grad():
            features = self.backbone(support_x).flatten(1)
        weight = torch.zeros(ways, features.shape[1], dtype=features.dtype, requires_grad=True)
        bias = torch.zeros(ways, dtype=features.dtype, requires_grad=True)
        penalty = 1.0 / (2 * self.inverse_regularization * len(support_y))
        optimizer = torch.optim.LBFGS(
            [weight, bias], max_iter=self.max_iterations, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
        )

        def objective() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(features @ weight.T + bias, support_y) + penalty * weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(objective)
        return weight.detach(), bias.detach()

    def predict(self, adapted: tuple[Tensor, Tensor], query_x: Tensor) -> Tensor:
        weight, bias = adapted
        return self.backbone(query_x).flatten(1) @ weight.T + bias

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        for task in tasks:
            check_query(task.support_x, task.query_x)
        raise NotImplementedError(
            "logistic regression probes are fitted per task and have nothing to meta-train; evaluate them directly"
        )
