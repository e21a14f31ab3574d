"""The photo benchmarks of few-shot learning, read from the files people have: CIFAR-FS, FC100, mini-ImageNet.

None of their images can be downloaded here; the loaders read the published formats from the data
root and are tested on small files written in exactly those formats.

- **CIFAR-FS and FC100** (``cifar100/``): CIFAR-100's python version (``cifar-100-python/train`` and
  ``test``, pickles of ``data`` rows of 3,072 bytes and ``fine_labels``; its ``meta`` names the fine
  classes). Every class pools its 500 training and 100 test images (600), as in the papers; the
  class splits are :mod:`learntolearn.data.splits.cifar100`. Images are 32x32 RGB.
- **mini-ImageNet** (``mini_imagenet/``): Ravi & Larochelle's ``train.csv``, ``val.csv`` and
  ``test.csv`` (``filename,label``) with the images in ``images/`` (any size, resized to
  ``image_size`` with Lanczos, 84 by default), or the widely shared pickle cache
  ``mini-imagenet-cache-{train,val,test}.pkl`` (``image_data``: ``(n, 84, 84, 3)`` uint8,
  ``class_dict``: class -> image indices), used when present.
- **tiered-ImageNet** (``tiered_imagenet/``): ``{train,val,test}_labels.pkl`` give each image's class,
  as Ren et al. 2018 released them (``label_specific``, named by ``label_specific_str``) or as in the
  copy MetaOptNet distributes (``labels``, ids that run on across subsets); the images are either
  ``{subset}_images_png.pkl`` (the original release: a sequence of PNG-encoded byte arrays) or
  ``{subset}_images.npz`` (``images``: ``(n, 84, 84, 3)`` uint8, the decompressed copy), read when
  present. A subset has 351 / 97 / 160 classes; pixels are taken as the files store them.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.data.roots import resolve_data_root
from learntolearn.data.splits.cifar100 import SPLITS as CIFAR_SPLITS
from learntolearn.errors import DataError

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MINI_IMAGENET_SUBSETS = ("train", "val", "test")
#: tiered-ImageNet's classes per subset (Ren et al. 2018, Section 5)
TIERED_CLASSES = {"train": 351, "val": 97, "test": 160}


class _Restricted(pickle.Unpickler):
    """Unpickles plain data only (dicts, lists, strings, bytes, numbers and numpy arrays): a data file cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("_codecs", "encode"),  # how protocol-2 pickles spell bytes: harmless
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_pickle(path: Path, what: str) -> Any:
    """A pickle of plain data (bytes keys decoded as CIFAR's latin-1), refusing anything that could run code."""
    try:
        with open(path, "rb") as f:
            data = _Restricted(f, encoding="latin1").load()
        if isinstance(data, dict):  # Python 2 pickles give str keys with latin-1, re-pickled copies bytes keys
            data = {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}
        return data
    except FileNotFoundError:
        raise
    except Exception as err:  # a truncated file or one holding objects: one line naming it
        raise DataError(f"{path} is not a readable {what} pickle ({type(err).__name__}: {err})") from err


def _folder(data_root: str | os.PathLike[str] | None, name: str, hint: str) -> Path:
    folder = resolve_data_root(data_root) / name
    if not folder.is_dir():
        raise DataError(f"{folder} not found: {hint}")
    return folder


def load_cifar_fs(
    split: str = "cifar-fs",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    **_: object,
) -> ImageClassDataset:
    """The classes of ``subset`` of CIFAR-FS (``split="cifar-fs"``) or FC100 (``"fc100"``), 600 images each."""
    if split not in CIFAR_SPLITS or subset not in CIFAR_SPLITS[split]:
        raise DataError(f"unknown CIFAR-100 split {split}/{subset}; splits: cifar-fs, fc100 (train, val, test)")
    hint = f"extract {CIFAR_URL} there (it holds cifar-100-python/train, test and meta)"
    folder = _folder(data_root, "cifar100", hint) / "cifar-100-python"
    if not folder.is_dir():
        raise DataError(f"{folder} not found: {hint}")
    names = read_pickle(folder / "meta", "CIFAR-100 meta")["fine_label_names"]
    wanted = CIFAR_SPLITS[split][subset]
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise DataError(f"{folder / 'meta'} lacks the classes {missing[:3]}; is it CIFAR-100's python version?")
    per_class: dict[int, list[np.ndarray]] = {names.index(n): [] for n in wanted}
    for part in ("train", "test"):
        data = read_pickle(folder / part, f"CIFAR-100 {part}")
        rows, labels = np.asarray(data["data"], dtype=np.uint8), np.asarray(data["fine_labels"])
        if rows.ndim != 2 or rows.shape[1] != 3072 or len(rows) != len(labels):
            raise DataError(f"{folder / part}: expected rows of 3,072 bytes, one fine label each")
        for label in per_class:
            per_class[label].append(rows[labels == label])
    images = [np.concatenate(per_class[names.index(n)]).reshape(-1, 3, 32, 32) for n in wanted]
    counts = [len(block) for block in images]
    return ImageClassDataset(
        f"{split}/{subset}",
        torch.from_numpy(np.concatenate(images)),
        ImageClassDataset.offsets_from_counts(counts),
        tuple(wanted),
    )


def load_mini_imagenet(
    split: str = "ravi",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    image_size: int = 84,
    **_: object,
) -> ImageClassDataset:
    """The 64 / 16 / 20 classes of ``subset`` of mini-ImageNet (Ravi & Larochelle's split), 600 images each."""
    if subset not in MINI_IMAGENET_SUBSETS:
        raise DataError(f"unknown mini-ImageNet subset {subset!r}; choose from train, val, test")
    hint = "it should hold train.csv, val.csv, test.csv and images/, or the mini-imagenet-cache-*.pkl files"
    folder = _folder(data_root, "mini_imagenet", hint)
    cache = folder / f"mini-imagenet-cache-{subset}.pkl"
    if cache.exists():
        data = read_pickle(cache, "mini-ImageNet cache")
        pixels, classes = np.asarray(data["image_data"], dtype=np.uint8), data["class_dict"]
        names = tuple(sorted(classes))
        order = np.concatenate([np.asarray(classes[name]) for name in names])
        images = torch.from_numpy(pixels[order]).permute(0, 3, 1, 2).contiguous()
        if image_size != images.shape[-1]:
            images = torch.nn.functional.interpolate(images.float(), size=image_size, mode="area").round().byte()
        counts = [len(classes[name]) for name in names]
        return ImageClassDataset(
            f"mini_imagenet/ravi/{subset}", images, ImageClassDataset.offsets_from_counts(counts), names
        )
    table = folder / f"{subset}.csv"
    if not table.exists():
        raise DataError(f"{table} not found: {hint}")
    by_class: dict[str, list[str]] = {}
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["filename", "label"]:
            raise DataError(f"{table}: expected the header filename,label, found {reader.fieldnames}")
        for row in reader:
            by_class.setdefault(row["label"], []).append(row["filename"])
    photo = Preprocessing(channels=3, size=image_size, invert=False)
    names = tuple(sorted(by_class))
    photos: list[torch.Tensor] = []
    for name in names:
        for filename in by_class[name]:
            path = folder / "images" / filename
            if not path.exists():
                raise DataError(
                    f"{path} not found (listed in {table}); put the mini-ImageNet images in {folder / 'images'}"
                )
            photos.append(photo.load(path))
    counts = [len(by_class[name]) for name in names]
    return ImageClassDataset(
        f"mini_imagenet/ravi/{subset}", torch.stack(photos), ImageClassDataset.offsets_from_counts(counts), names
    )


def load_tiered_imagenet(
    split: str = "ren",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    image_size: int = 84,
    **_: object,
) -> ImageClassDataset:
    """The 351 / 97 / 160 classes of ``subset`` of tiered-ImageNet (Ren et al. 2018), grouped by class."""
    from PIL import Image

    if split != "ren" or subset not in TIERED_CLASSES:
        raise DataError(f"unknown tiered-ImageNet split {split}/{subset}; split ren, subsets train, val, test")
    hint = "it should hold {train,val,test}_labels.pkl with {subset}_images_png.pkl or {subset}_images.npz"
    folder = _folder(data_root, "tiered_imagenet", hint)
    labels_path = folder / f"{subset}_labels.pkl"
    if not labels_path.exists():
        raise DataError(f"{labels_path} not found: {hint}")
    labels_record = read_pickle(labels_path, "tiered-ImageNet labels")
    key = next(
        (k for k in ("label_specific", "labels") if isinstance(labels_record, dict) and k in labels_record), None
    )
    if key is None:
        raise DataError(f"{labels_path}: expected a dict with label_specific (Ren et al.) or labels (MetaOptNet)")
    ids, labels = np.unique(np.asarray(labels_record[key], dtype=np.int64), return_inverse=True)
    packed, png = folder / f"{subset}_images.npz", folder / f"{subset}_images_png.pkl"
    if packed.exists():
        with np.load(packed, allow_pickle=False) as archive:
            pixels = np.asarray(archive["images"], dtype=np.uint8)
    elif png.exists():
        encoded = read_pickle(png, "tiered-ImageNet PNG images")
        try:
            pixels = np.stack([np.asarray(Image.open(io.BytesIO(bytes(item))).convert("RGB")) for item in encoded])
        except (OSError, ValueError) as err:
            raise DataError(f"{png}: an image does not decode as PNG ({err})") from err
    else:
        raise DataError(f"neither {packed.name} nor {png.name} in {folder}: {hint}")
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or len(pixels) != len(labels):
        raise DataError(
            f"{folder}: {len(labels)} labels but images of shape {pixels.shape}; expected (n, height, width, 3)"
        )
    n_classes = len(ids)
    given = labels_record.get("label_specific_str") if key == "label_specific" else None
    if given is not None and len(given) <= int(ids.max()):
        raise DataError(f"{labels_path}: {len(given)} class names for class ids up to {int(ids.max())}")
    names = tuple(str(given[i]) if given is not None else f"class{i:03d}" for i in ids.tolist())
    order = np.argsort(labels, kind="stable")
    images = torch.from_numpy(pixels[order]).permute(0, 3, 1, 2).contiguous()
    if image_size != images.shape[-1]:
        images = torch.nn.functional.interpolate(images.float(), size=image_size, mode="area").round().byte()
    counts = np.bincount(labels, minlength=n_classes).tolist()
    return ImageClassDataset(
        f"tiered_imagenet/ren/{subset}", images, ImageClassDataset.offsets_from_counts(counts), names
    )


def photo_preprocessing(image_size: int) -> Preprocessing:
    """How a user's photo becomes an input of a model trained on these sets: RGB, squeezed to ``image_size``."""
    return Preprocessing(channels=3, size=image_size, invert=False)
