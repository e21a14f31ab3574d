"""Random views of a batch of images, one call for the batch: crops of random scale and aspect, resized back,
and horizontal flips (the standard "random resized crop + flip", for test-time fine-tuning), and Koch et al.'s
small affine distortions of training episodes (:class:`AffineDistortedEpisodes`)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.types import Task

#: Koch, Zemel & Salakhutdinov 2015, Section 4.1: rotation (degrees), shear, scale and translation (pixels of
#: their 105-pixel images) ranges, each component of a distortion drawn with probability 1/2
KOCH_ROTATION, KOCH_SHEAR, KOCH_SCALE, KOCH_SHIFT = 10.0, 0.3, (0.8, 1.2), 2.0 / 105


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


def koch_affine_maps(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` random affine maps of Koch et al. 2015: linear parts ``(n, 2, 2)`` (rotation in +-10 degrees, shears
    in +-0.3, scales in [0.8, 1.2]) and shifts ``(n, 2)`` (up to 2/105 of the image), in image fractions, each
    of the seven components present with probability 1/2."""

    def drawn(low: float, high: float, neutral: float) -> Tensor:
        value = torch.empty(n).uniform_(low, high, generator=generator)
        return torch.where(torch.rand(n, generator=generator) < 0.5, value, torch.full((n,), neutral))

    angle = torch.deg2rad(drawn(-KOCH_ROTATION, KOCH_ROTATION, 0.0))
    shear_x, shear_y = drawn(-KOCH_SHEAR, KOCH_SHEAR, 0.0), drawn(-KOCH_SHEAR, KOCH_SHEAR, 0.0)
    scale_x, scale_y = drawn(*KOCH_SCALE, 1.0), drawn(*KOCH_SCALE, 1.0)
    shift = torch.stack([drawn(-KOCH_SHIFT, KOCH_SHIFT, 0.0), drawn(-KOCH_SHIFT, KOCH_SHIFT, 0.0)], -1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    ones = torch.ones(n)
    shear = torch.stack([torch.stack([ones, shear_x], -1), torch.stack([shear_y, ones], -1)], -2)
    return rotation @ shear @ torch.diag_embed(torch.stack([scale_x, scale_y], -1)), shift


def warp(images: Tensor, linear: Tensor, shift: Tensor) -> Tensor:
    """Images ``(n, C, H, W)`` under the maps x -> linear x + shift (coordinates from the centre, in fractions of
    the image, x to the right and y down), bilinear, the border's value filling in."""
    inverse = torch.linalg.inv(linear)  # affine_grid maps output to input coordinates
    theta = torch.cat([inverse, -inverse @ (2 * shift).unsqueeze(-1)], dim=-1)  # fractions -> [-1, 1] units
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def affine_distortions(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each float image ``(n, C, H, W)`` under its own random map of :func:`koch_affine_maps`."""
    return warp(images, *koch_affine_maps(images.shape[0], generator))


class AffineDistortedEpisodes:
    """Training episodes of ``sampler`` with every image affinely distorted (:func:`affine_distortions`).

    The distortions of the episode at position p of the stream are drawn from a generator seeded by
    ``(seed, p)``, so they do not depend on which share of a meta-batch a process keeps, and a resumed run
    (the position is in the state) distorts exactly as an uninterrupted one."""

    def __init__(self, sampler: Any, seed: int) -> None:
        self.sampler, self.seed, self.position = sampler, seed, 0

    def distorted(self, task: Task, position: int) -> Task:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + position)
        support, query = (affine_distortions(x.float(), generator).to(x.dtype) for x in (task.support_x, task.query_x))
        return replace(task, support_x=support, query_x=query)

    def sample_many(self, count: int, keep: range | None = None) -> list[Task]:
        kept = keep if keep is not None else range(count)
        tasks = self.sampler.sample_many(count, keep)
        out = [self.distorted(task, self.position + index) for task, index in zip(tasks, kept)]
        self.position += count
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": self.sampler.state_dict(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["episodes"])
        self.position = state["position"]
