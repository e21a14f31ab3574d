"""Meta-SGD (Li, Zhou, Chen & Li, 2017): MAML with a learned inner learning rate per parameter.

The inner update is ``theta' = theta - alpha * grad L_support(theta)`` where ``alpha`` has the shape
of ``theta`` and is meta-learned jointly with the initialisation (Eq. 3); it sets both the
direction and the size of the adaptation step. ``alpha`` starts at ``inner_lr`` everywhere (the
paper draws it uniformly from [0.005, 0.1]).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS
from learntolearn.algorithms.maml import MAML, GradientConfig


@ALGORITHMS.register("metasgd")
class MetaSGD(MAML):
    """MAML whose inner step sizes ``alpha`` are parameters, one per weight (``rates``)."""

    Config = GradientConfig

    def __init__(self, model: nn.Module, **options) -> None:
        super().__init__(model, **options)
        self.rates = nn.ParameterList(
            nn.Parameter(torch.full_like(p, self.inner_lr)) for _, p in self.model.named_parameters()
        )

    def inner_rates(self) -> dict[str, Tensor]:
        return {name: rate for (name, _), rate in zip(self.model.named_parameters(), self.rates)}
