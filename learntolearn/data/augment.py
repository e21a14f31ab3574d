"""Random views of a batch of images for test-time fine-tuning: crops of random scale and aspect, resized back,
and horizontal flips (the standard "random resized crop + flip" of image training), one call for the batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_resized_crops(
    images: Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> Tensor:
    """For each float image ``(n, C, H, W)``, a crop of ``scale`` of its area and aspect ``ratio`` at a random
    place, resized bilinearly to ``H x W``, mirrored left-right with probability 1/2 when ``flip``."""
    n = images.shape[0]
    area = torch.empty(n).uniform_(*scale, generator=generator)
    aspect = torch.exp(torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator))
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image's width and height
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (torch.rand(n, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(n, generator=generator) * 2 - 1) * (1 - height)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * mirror, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
