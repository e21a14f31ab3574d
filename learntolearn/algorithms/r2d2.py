"""R2-D2: a differentiable ridge-regression head (Bertinetto, Henriques, Torr & Vedaldi, ICLR 2019,
"Meta-learning with differentiable closed-form solvers"; the ridge head of MetaOptNet, Lee et al. 2019).

Per task, ridge regression maps the support embeddings ``X`` (``n x d``) to one-hot targets ``Y``
(``n x N``) in closed form. With few examples, ``n << d``, the Woodbury identity gives the solution
from an ``n x n`` system::

    W = X^T (X X^T + lambda I)^-1 Y

and the queries' logits are ``alpha * Z W + beta``. The backbone, ``lambda`` (through its log, so it
stays positive), and the scale ``alpha`` and bias ``beta`` are meta-learned by backpropagating the
query loss through the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, EmbeddingAlgorithm, ModelSetting, flat_embeddings
from learntolearn.errors import ConfigError
from learntolearn.settings import setting


@dataclass(frozen=True)
class R2D2Config(AlgorithmConfig):
    """R2-D2's settings."""

    section = "r2d2"

    ridge: float = setting(1.0, "Initial ridge penalty lambda (> 0).")
    learn_ridge: bool = setting(True, "Meta-learn lambda with the backbone (the paper); else keep it fixed.")
    scale: float = setting(1.0, "Initial scale alpha of the logits (meta-learned with the bias beta).")

    def check(self) -> None:
        if not self.ridge > 0:
            raise ConfigError(f"r2d2 key 'ridge' must be > 0, got {self.ridge}")


def ridge_weights(support: Tensor, targets: Tensor, ridge: Tensor) -> Tensor:
    """``X^T (X X^T + ridge I)^-1 Y``: the ridge-regression weights ``(d, N)`` from ``n`` examples."""
    gram = support @ support.T
    system = gram + ridge * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return support.T @ torch.linalg.solve(system, targets)


@ALGORITHMS.register("r2d2")
class R2D2(EmbeddingAlgorithm):
    """Ridge regression on the support embeddings, solved in closed form and differentiated through."""

    Config = R2D2Config

    def __init__(
        self, backbone: nn.Module, *, ridge: float = 1.0, learn_ridge: bool = True, scale: float = 1.0
    ) -> None:
        super().__init__()
        R2D2Config(ridge=ridge, learn_ridge=learn_ridge, scale=scale)
        self.backbone = backbone
        log_ridge = torch.tensor(math.log(ridge))
        if learn_ridge:
            self.log_ridge = nn.Parameter(log_ridge)
        else:
            self.register_buffer("log_ridge", log_ridge)
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(0.0))

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> R2D2:
        return cls(backbone, **config.to_dict())

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "R2-D2")

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        dtype = torch.promote_types(support.dtype, torch.float32)  # the solve runs in float32 (or float64)
        support, query = support.to(dtype), query.to(dtype)
        weights = ridge_weights(support, F.one_hot(support_y, ways).to(dtype), self.log_ridge.exp().to(dtype))
        return self.scale * (query @ weights) + self.bias
