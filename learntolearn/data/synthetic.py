"""A tiny generated image data set for fast tests: each class is a random blocky binary glyph.

A glyph is a random 4x4 binary pattern scaled up to the image size. Every image of a class is its
glyph shifted by up to two pixels with 10% of the pixels flipped, so nearest prototypes in pixel
space reach only about 68% 5-way 1-shot accuracy (an untrained conv4 about 47%). A learner must
acquire noise and translation invariance from the training glyphs; a small conv4 reaches about 90%
within 150 episodes.
Splits use disjoint glyphs.
"""

from __future__ import annotations

import torch

from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.errors import DataError

SPLITS: dict[str, tuple[str, ...]] = {"default": ("train", "val", "test")}
_CLASSES = {"train": 200, "val": 40, "test": 40}
_SEEDS = {"train": 1, "val": 2, "test": 3}


def preprocessing(image_size: int) -> Preprocessing:
    """Glyphs are bright on a dark ground, so a user's dark-on-light drawings are inverted to match."""
    return Preprocessing(channels=1, size=image_size, invert=True)


def load_synthetic(
    split: str = "default",
    subset: str = "train",
    *,
    image_size: int = 16,
    per_class: int = 20,
    flip: float = 0.1,
    **_: object,
) -> ImageClassDataset:
    """Generate ``subset`` deterministically: 200 / 40 / 40 classes of ``per_class`` images each."""
    g = torch.Generator().manual_seed(_SEEDS[subset])
    n = _CLASSES[subset]
    if image_size % 4:
        raise DataError(f"synthetic glyphs need an image size divisible by 4, got {image_size}")
    blocks = torch.rand(n, 1, 1, 4, 4, generator=g) < 0.5
    glyphs = blocks.repeat_interleave(image_size // 4, dim=-2).repeat_interleave(image_size // 4, dim=-1)
    shifts = torch.randint(-2, 3, (n, per_class, 2), generator=g)
    images = glyphs.expand(n, per_class, 1, image_size, image_size).clone()
    for c in range(n):
        for i in range(per_class):
            images[c, i] = torch.roll(images[c, i], tuple(shifts[c, i].tolist()), dims=(-2, -1))
    images ^= torch.rand(images.shape, generator=g) < flip
    images = images.to(torch.uint8).mul_(255)
    offsets = torch.arange(n + 1) * per_class
    names = tuple(f"glyph{c:03d}" for c in range(n))
    return ImageClassDataset(
        f"synthetic/{split}/{subset}", images.view(n * per_class, 1, image_size, image_size), offsets, names
    )
