"""A residual bottleneck adapter over frozen features (Houlsby et al. 2019, "Parameter-Efficient Transfer
Learning for NLP", Section 2.1): ``x + W_up relu(W_down x)``, with ``W_up`` zero-initialised so that
training starts from the frozen features themselves."""

from __future__ import annotations

from torch import Tensor, nn


class ResidualAdapter(nn.Module):
    """Maps ``(batch, dim)`` features to ``(batch, dim)``; the identity until trained."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.down, self.up = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.down(x).relu())
