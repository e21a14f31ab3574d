"""Image classification data held in memory as one uint8 tensor, grouped by class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from learntolearn.data.images import to_float
from learntolearn.errors import DataError


class ClassGroups:
    """Rows grouped contiguously by class: class ``c`` owns rows ``offsets[c]:offsets[c + 1]``.

    Shared by the image and text data sets (what the episode sampler needs besides ``to_float``).
    """

    offsets: Tensor
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @staticmethod
    def offsets_from_counts(counts: list[int]) -> Tensor:
        return torch.cat([torch.zeros(1, dtype=torch.int64), torch.tensor(counts, dtype=torch.int64).cumsum(0)])

    def check_groups(self, rows: int, what: str) -> None:
        """``ValueError`` unless the offsets cover ``rows`` rows and every class has at least one."""
        if self.offsets.shape != (len(self.class_names) + 1,) or int(self.offsets[-1]) != rows:
            raise DataError(f"offsets must have one entry per class plus one, ending at the number of {what}")
        if bool((self.counts <= 0).any()):
            raise DataError(f"class {self.class_names[int((self.counts <= 0).nonzero()[0])]!r} has no {what}")


class EpisodicData(Protocol):
    """What episode samplers read: a named set of classes whose rows are contiguous, as float tensors."""

    @property
    def name(self) -> str: ...

    @property
    def offsets(self) -> Tensor: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def n_classes(self) -> int: ...

    @property
    def counts(self) -> Tensor: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    def to_float(self, indices: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class ImageClassDataset(ClassGroups):
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
            raise DataError(
                f"images must be a uint8 tensor (n, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        self.check_groups(self.images.shape[0], "images")

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input as episodes carry it (the image shape)."""
        return self.image_shape

    @classmethod
    def from_class_tensors(cls, name: str, per_class: list[Tensor], class_names: list[str]) -> ImageClassDataset:
        """Build from one ``(n_c, C, H, W)`` uint8 tensor per class."""
        offsets = cls.offsets_from_counts([len(t) for t in per_class])
        return cls(name, torch.cat(per_class), offsets, tuple(class_names))

    def to_float(self, indices: Tensor) -> Tensor:
        """Images at ``indices`` (any shape) as float32 in [0, 1], shape ``(*indices.shape, C, H, W)``."""
        return to_float(self.images[indices])


@dataclass(frozen=True)
class FeatureDataset(ClassGroups):
    """Precomputed features of a class data set (e.g. a frozen encoder's), rows contiguous per class as in it."""

    name: str
    features: Tensor
    offsets: Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        self.check_groups(self.features.shape[0], "feature rows")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    def to_float(self, indices: Tensor) -> Tensor:
        return self.features[indices]
