"""Koch et al.'s affine distortions of training episodes: the warp moves pixels where its map says, the random
maps stay in the paper's ranges, and distorted episodes depend on their stream position only."""

import math

import pytest
import torch

from learntolearn.data import EpisodeSampler
from learntolearn.data.augment import (
    KOCH_SHIFT,
    AffineDistortedEpisodes,
    affine_distortions,
    koch_affine_maps,
    warp,
)
from learntolearn.data.synthetic import load_synthetic


def dot(row: int, column: int, size: int = 32) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[0, 0, row - 1 : row + 2, column - 1 : column + 2] = 1.0
    return image


def centroid(image: torch.Tensor) -> tuple[float, float]:
    weights = image[0, 0]
    rows, columns = torch.meshgrid(torch.arange(weights.shape[0]), torch.arange(weights.shape[1]), indexing="ij")
    total = weights.sum()
    return float((rows * weights).sum() / total), float((columns * weights).sum() / total)


def test_the_warp_is_the_identity_a_shift_and_a_rotation_as_its_map_says():
    image = dot(16, 20)
    identity = torch.eye(2).unsqueeze(0)
    assert torch.allclose(warp(image, identity, torch.zeros(1, 2)), image, atol=1e-6)
    shifted = warp(image, identity, torch.tensor([[0.125, -0.25]]))  # 4 pixels right, 8 up
    assert centroid(shifted) == pytest.approx((8.0, 24.0), abs=0.05)
    quarter = math.pi / 2  # x right, y down: a quarter turn takes the point right of the centre below it
    rotation = torch.tensor([[[math.cos(quarter), -math.sin(quarter)], [math.sin(quarter), math.cos(quarter)]]])
    row, column = centroid(warp(image, rotation, torch.zeros(1, 2)))
    assert (row, column) == pytest.approx((15.5 + 4.5, 15.5 - 0.5), abs=0.1)  # (4.5, 0.5) -> (-0.5, 4.5)


def test_random_maps_stay_in_the_papers_ranges_and_leave_each_component_out_half_the_time():
    linear, shift = koch_affine_maps(4000, torch.Generator().manual_seed(0))
    assert shift.abs().max() <= KOCH_SHIFT and 0.4 < (shift[:, 0] == 0).float().mean() < 0.6
    untouched = torch.isclose(linear, torch.eye(2).expand_as(linear)).all(dim=(1, 2)).float().mean()
    assert untouched == pytest.approx(0.5**5, abs=0.01), "rotation, two shears, two scales each absent half the time"
    determinant = torch.linalg.det(linear)  # rotations keep area; shears change it by 1 - shear_x * shear_y
    assert determinant.min() > 0.8**2 * (1 - 0.3**2) - 1e-6 and determinant.max() < 1.2**2 * (1 + 0.3**2) + 1e-6


def test_distortions_keep_shapes_and_differ_between_images():
    images = dot(16, 16).repeat(8, 1, 1, 1)
    out = affine_distortions(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1
    assert len({tuple(out[i].flatten().tolist()) for i in range(8)}) > 1


def test_distorted_episodes_depend_on_their_position_only_and_resume_exactly():
    data = load_synthetic(subset="train", image_size=16)

    def episodes() -> AffineDistortedEpisodes:
        return AffineDistortedEpisodes(EpisodeSampler(data, ways=3, shots=1, queries=2, seed=5), seed=5)

    plain = EpisodeSampler(data, ways=3, shots=1, queries=2, seed=5).sample_many(4)
    whole, share = episodes().sample_many(4), episodes().sample_many(4, keep=range(2, 4))
    for mine, full in zip(share, whole[2:]):
        assert torch.equal(mine.support_x, full.support_x) and torch.equal(mine.query_x, full.query_x)
    for distorted, original in zip(whole, plain):
        assert torch.equal(distorted.support_y, original.support_y) and torch.equal(
            distorted.class_ids, original.class_ids
        )
        assert not torch.equal(distorted.query_x, original.query_x)
    straight = episodes()
    straight.sample_many(4)
    later = straight.sample_many(3)
    first = episodes()
    first.sample_many(4)
    resumed = episodes()
    resumed.load_state_dict(first.state_dict())
    for a, b in zip(later, resumed.sample_many(3)):
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
