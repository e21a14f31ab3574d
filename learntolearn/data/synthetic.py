"""A tiny generated image data set for fast tests: each class is a random binary glyph.

Every image of a class is its glyph shifted by up to one pixel with 10% of the pixels flipped, so a
learner must generalise across noise and translation, yet a small network solves 5-way 1-shot
episodes within a few hundred steps. Splits use disjoint glyphs.
"""

from __future__ import annotations

import torch

from learntolearn.data.indexed import ImageClassDataset

SPLITS = {"default": ("train", "val", "test")}
_CLASSES = {"train": 64, "val": 16, "test": 20}
_SEEDS = {"train": 1, "val": 2, "test": 3}


def load_synthetic(split: str = "default", subset: str = "train", *, image_size: int = 14, per_class: int = 20,
                   flip: float = 0.1, **_: object) -> ImageClassDataset:
    """Generate ``subset`` deterministically: 64 / 16 / 20 classes of ``per_class`` images each."""
    g = torch.Generator().manual_seed(_SEEDS[subset])
    n = _CLASSES[subset]
    glyphs = torch.rand(n, 1, 1, image_size, image_size, generator=g) < 0.3
    shifts = torch.randint(-1, 2, (n, per_class, 2), generator=g)
    images = glyphs.expand(n, per_class, 1, image_size, image_size).clone()
    for c in range(n):
        for i in range(per_class):
            images[c, i] = torch.roll(images[c, i], tuple(shifts[c, i].tolist()), dims=(-2, -1))
    images ^= torch.rand(images.shape, generator=g) < flip
    images = images.to(torch.uint8).mul_(255)
    offsets = torch.arange(n + 1) * per_class
    names = tuple(f"glyph{c:03d}" for c in range(n))
    return ImageClassDataset(f"synthetic/{split}/{subset}", images.view(n * per_class, 1, image_size, image_size), offsets, names)
