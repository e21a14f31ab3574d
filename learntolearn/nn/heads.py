"""Classification heads on top of a backbone."""

from __future__ import annotations

import math

from torch import nn


def linear_head(output_shape: tuple[int, ...], ways: int) -> list[nn.Module]:
    """A linear classifier over the backbone's output, flattened first when it is not a vector."""
    linear = nn.Linear(math.prod(output_shape), ways)
    return [linear] if len(output_shape) == 1 else [nn.Flatten(), linear]
