"""Image classification data held in memory as one uint8 tensor, grouped by class."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.data.images import to_float


@dataclass(frozen=True)
class ImageClassDataset:
    """All images of a set of classes, contiguous per class.

    Attributes:
        name: a readable identifier, e.g. ``omniglot/vinyals/train``.
        images: uint8 tensor of shape ``(n_images, C, H, W)``; class ``c`` owns rows
            ``offsets[c]:offsets[c + 1]``.
        offsets: int64 tensor of shape ``(n_classes + 1,)``.
        class_names: one name per class, e.g. ``Angelic/character01/rot090``.
    """

    name: str
    images: Tensor
    offsets: Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (n, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.offsets.shape != (len(self.class_names) + 1,) or int(self.offsets[-1]) != self.images.shape[0]:
            raise ValueError("offsets must have one entry per class plus one, ending at the number of images")
        if bool((self.counts <= 0).any()):
            raise ValueError(f"class {self.class_names[int((self.counts <= 0).nonzero()[0])]!r} has no images")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @classmethod
    def from_class_tensors(cls, name: str, per_class: list[Tensor], class_names: list[str]) -> "ImageClassDataset":
        """Build from one ``(n_c, C, H, W)`` uint8 tensor per class."""
        counts = torch.tensor([len(t) for t in per_class], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        return cls(name, torch.cat(per_class), offsets, tuple(class_names))

    def to_float(self, indices: Tensor) -> Tensor:
        """Images at ``indices`` (any shape) as float32 in [0, 1], shape ``(*indices.shape, C, H, W)``."""
        return to_float(self.images[indices])
