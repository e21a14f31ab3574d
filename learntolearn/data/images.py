"""Turning image files into the tensors a model was trained on, and reading a user's image folders.

A :class:`Preprocessing` records how a data set's images became uint8 tensors (colour mode, size,
resampling, whether ink is bright), so that a trained model applies the same steps to a user's own
images. Folders follow the usual layout: ``support/<class_name>/*.png|jpg`` and a flat query folder.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from learntolearn.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


#: how an image is brought to a square: squeezed whole (glyphs), or its centre square after scaling its shorter side
RESIZE_POLICIES = ("stretch", "center-crop")
#: modes PIL's ``Image.reduce`` handles; others (palette, 1-bit, 16-bit) are converted at full size
REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F")


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or floating-point grey image scaled to 8 bits (PIL's ``convert`` would clip
    every value above 255 to white): 16-bit ranges are divided by 257, floats in [0, 1] multiplied by 255."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    pixels = np.asarray(image, dtype=np.float64)
    top = float(pixels.max()) if pixels.size else 0.0
    if image.mode == "F" and top <= 1.0:
        pixels = pixels * 255
    elif top > 255:
        pixels = pixels / 257 if top <= 65535 else pixels * (255 / top)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="L")


@dataclass(frozen=True)
class Preprocessing:
    """Image file -> ``(channels, size, size)`` uint8 tensor: convert, resize (Lanczos), optionally invert.

    ``resize`` is ``stretch`` (the whole image squeezed to a square: glyphs) or ``center-crop`` (the
    shorter side scaled to ``size`` and the centre square kept: photos, as ImageNet models were fed).
    Transparent pixels are composited on ``matte`` (a grey level), by default the training background.
    """

    channels: int
    size: int
    invert: bool
    resize: str = "stretch"
    matte: int | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise DataError(f"images must have 1 (grey) or 3 (RGB) channels, got {self.channels}")
        if self.resize not in RESIZE_POLICIES:
            raise DataError(f"unknown resize policy {self.resize!r}; choose from {', '.join(RESIZE_POLICIES)}")

    @property
    def background(self) -> int:
        """The grey level transparency is composited on: ``matte``, else the training images' background in their
        files (white under dark ink when ink is inverted to bright, else black)."""
        if self.matte is not None:
            return self.matte
        return 255 if self.invert else 0

    def from_image(self, image: Image.Image) -> Tensor:
        """Apply the photo's EXIF orientation, composite transparency on the background, then convert, resize
        and invert as the training images were."""
        factor = min(image.size) // (2 * self.size)  # a large image shrinks first (box filter), to twice the size
        if factor >= 2 and image.mode in REDUCIBLE_MODES:
            reduced = image.reduce(factor)
            reduced.info.update(image.info)  # the EXIF orientation, applied next
            image = reduced
        image = eight_bit(ImageOps.exif_transpose(image))
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            ground = Image.new("RGBA", rgba.size, (self.background,) * 3 + (255,))
            image = Image.alpha_composite(ground, rgba)
        image = image.convert("L" if self.channels == 1 else "RGB")
        if self.resize == "center-crop" and image.size[0] != image.size[1]:
            side = min(image.size)
            left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
            image = image.crop((left, top, left + side, top + side))
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.LANCZOS)
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(
            self.size, self.size, self.channels
        )
        pixels = pixels.permute(2, 0, 1).contiguous()
        return 255 - pixels if self.invert else pixels

    def load(self, path: str | os.PathLike[str]) -> Tensor:
        """One image file as a uint8 tensor; an unreadable file raises :class:`DataError` naming it."""
        try:
            with Image.open(path) as image:
                image.draft(None, (2 * self.size, 2 * self.size))  # JPEG: decoded at 1/2-1/8 scale when that suffices
                return self.from_image(image)
        except Image.DecompressionBombError as err:
            raise DataError(f"image {path} is too large to decode safely ({err}); downscale it first") from err
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"cannot read image {path}: {err}; remove it or replace it with a PNG or JPEG") from err

    def to_dict(self) -> dict:
        return asdict(self)


def to_float(images: Tensor) -> Tensor:
    """uint8 pixels as float32 in [0, 1], the input every backbone is trained on."""
    return images.to(torch.float32).div_(255.0)


def visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` except hidden and system ones (``.*``, e.g. ``.ipynb_checkpoints``, macOS
    ``._x.png`` files), with a warning that says how many were skipped."""
    entries = sorted(folder.iterdir())
    hidden = [p for p in entries if p.name.startswith(".")]
    if hidden:
        warnings.warn(
            f"skipped {len(hidden)} hidden entr{'y' if len(hidden) == 1 else 'ies'} in {folder} "
            f"({', '.join(p.name for p in hidden[:3])}{', ...' if len(hidden) > 3 else ''})",
            stacklevel=3,
        )
    return [p for p in entries if not p.name.startswith(".")]


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return [p for p in visible(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def read_support_folder(
    folder: str | os.PathLike[str], preprocessing: Preprocessing
) -> tuple[Tensor, Tensor, list[str]]:
    """Images, labels ``0..N-1`` and class names (sorted sub-folder names) of ``folder/<class>/*.png|jpg``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"support folder {folder} does not exist; it should hold one sub-folder of images per class")
    classes = [p.name for p in visible(folder) if p.is_dir()]
    if not classes:
        raise DataError(
            f"support folder {folder} has no class sub-folders; put each class's images in {folder}/<class_name>/"
        )
    images, labels, paths = [], [], []
    for label, name in enumerate(classes):
        files = image_files(folder / name)
        if not files:
            raise DataError(
                f"class folder {folder / name} holds no images ({', '.join(IMAGE_SUFFIXES)}); add at "
                f"least one or remove it"
            )
        images += [preprocessing.load(f) for f in files]
        labels += [label] * len(files)
        paths += files
    warn_duplicates(paths, labels)
    return torch.stack(images), torch.tensor(labels), classes


def warn_duplicates(files: list[Path], labels: list[int]) -> None:
    """Warn when the same file (byte for byte) is an example of two classes: a mislabelled copy."""
    seen: dict[str, tuple[Path, int]] = {}
    clashes = []
    for path, label in zip(files, labels):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        first = seen.setdefault(digest, (path, label))
        if first[1] != label:
            clashes.append(f"{first[0]} and {path}")
    if clashes:
        warnings.warn(
            f"the same image is an example of two classes: {'; '.join(clashes[:3])}"
            f"{' ...' if len(clashes) > 3 else ''}; remove the copy from the wrong class",
            stacklevel=3,
        )


def read_query_folder(folder: str | os.PathLike[str], preprocessing: Preprocessing) -> tuple[Tensor, list[Path]]:
    """Images and paths of the images to label: the image files of ``folder``, or of its sub-folders when it
    holds only sub-folders (the labelled layout ``folder/<class>/<image>``, see :func:`query_labels`), or
    ``folder`` itself when it is one image file."""
    folder = Path(folder)
    if folder.is_file():
        if folder.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"query {folder} is not an image ({', '.join(IMAGE_SUFFIXES)}) nor a folder of images")
        return preprocessing.load(folder).unsqueeze(0), [folder]
    if not folder.is_dir():
        raise DataError(f"query folder {folder} does not exist")
    files = image_files(folder)
    if not files:
        files = [f for sub in visible(folder) if sub.is_dir() for f in image_files(sub)]
    if not files:
        raise DataError(
            f"query folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}), neither directly nor in "
            f"one sub-folder per class"
        )
    return torch.stack([preprocessing.load(f) for f in files]), files


def query_labels(folder: str | os.PathLike[str], files: list[Path]) -> list[str] | None:
    """The true class of each query file, the name of its sub-folder, when the queries are in the labelled
    layout ``folder/<class>/<image>``; None for a flat folder or a single file."""
    folder = Path(folder)
    if not folder.is_dir() or any(f.parent == folder for f in files):
        return None
    return [f.parent.name for f in files]
