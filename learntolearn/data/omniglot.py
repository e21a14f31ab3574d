"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015) from its official archives.

Reads ``<root>/omniglot/images_background.zip`` and ``images_evaluation.zip`` (and the minimal
``images_background_small1/2.zip``) exactly as the authors publish them at
https://github.com/brendenlake/omniglot. The PNGs are 1-bit images (white background, black ink);
they are converted explicitly to 8-bit grey, resized with a Lanczos filter and inverted so ink is
255, then held in memory as one uint8 tensor. Rotations by 90/180/270 degrees are new classes.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from learntolearn.data.archives import RemoteFile, fetch_file
from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.data.splits import omniglot as splits
from learntolearn.errors import DataError, UnknownNameError

OFFICIAL = "https://github.com/brendenlake/omniglot/raw/master/python/"
_MEMBER = re.compile(r"^[^/]+/([^/]+)/character(\d+)/(\d{4})_(\d{2})\.png$")


@dataclass(frozen=True)
class ArchiveSpec:
    """An official archive and the content a valid copy must have."""

    remote: RemoteFile
    alphabets: int
    characters: int
    images: int


# The official download's checksum: sha256 where the bytes are known (files copied byte for byte
# from the official repository), md5 for the two large archives, whose published md5 is what
# every other loader checks and whose sha256 we could not obtain from an official copy.
ARCHIVES: dict[str, ArchiveSpec] = {
    "images_background": ArchiveSpec(
        RemoteFile(
            "images_background.zip",
            OFFICIAL + "images_background.zip",
            "68d2efa1b9178cc56df9314c21c6e718",
            "md5",
            9464212,
        ),
        30,
        964,
        19280,
    ),
    "images_evaluation": ArchiveSpec(
        RemoteFile(
            "images_evaluation.zip",
            OFFICIAL + "images_evaluation.zip",
            "6b91aef0f799c5bb55b94e3f2daec811",
            "md5",
            6462886,
        ),
        20,
        659,
        13180,
    ),
    "images_background_small1": ArchiveSpec(
        RemoteFile(
            "images_background_small1.zip",
            OFFICIAL + "images_background_small1.zip",
            "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
            "sha256",
            1319022,
        ),
        5,
        136,
        2720,
    ),
    "images_background_small2": ArchiveSpec(
        RemoteFile(
            "images_background_small2.zip",
            OFFICIAL + "images_background_small2.zip",
            "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
            "sha256",
            1580917,
        ),
        5,
        156,
        3120,
    ),
}
LAKE_RUNS = RemoteFile(
    "all_runs.zip",
    OFFICIAL + "one-shot-classification/all_runs.zip",
    "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325",
    "sha256",
    352787,
)

SPLITS: dict[str, tuple[str, ...]] = {
    "vinyals": ("train", "val", "test", "trainval"),
    "lake": ("background", "evaluation", "background_small1", "background_small2"),
}


def fetch(remote: RemoteFile, data_root: str | os.PathLike[str] | None, download_missing: bool) -> Path:
    """Path of ``remote`` under ``<root>/omniglot``, downloading it when allowed and absent."""
    return fetch_file(remote, data_root, "omniglot", download_missing, "Omniglot archive")


def index_archive(path: Path, spec: ArchiveSpec) -> dict[tuple[str, int], list[str]]:
    """Map (alphabet, character number) to the archive's PNG members, checking the counts.

    A copy placed by the user is checked by content rather than by hash, since a re-zipped copy of
    the same images has another hash.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path} is not a readable zip archive ({err}); delete it and download it again") from err
    members: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name in names:
        match = _MEMBER.match(name)
        if match:
            members[(match.group(1), int(match.group(2)))].append(name)
    alphabets = {a for a, _ in members}
    images = sum(len(v) for v in members.values())
    found = (len(alphabets), len(members), images)
    expected = (spec.alphabets, spec.characters, spec.images)
    if found != expected:
        raise DataError(
            f"{path} does not hold the official {spec.remote.filename}: found {found[0]} alphabets, "
            f"{found[1]} characters, {found[2]} images; expected {expected[0]}, {expected[1]}, {expected[2]}. "
            f"Replace it with the official archive from {spec.remote.url}."
        )
    return {key: sorted(v) for key, v in members.items()}


def preprocessing(image_size: int) -> Preprocessing:
    """How Omniglot files become tensors: 8-bit grey, Lanczos-resized, inverted so ink is bright."""
    return Preprocessing(channels=1, size=image_size, invert=True)


def decode(png: bytes, image_size: int) -> Tensor:
    """A 1-bit Omniglot PNG as a ``(1, size, size)`` uint8 tensor with ink = 255."""
    return preprocessing(image_size).from_image(Image.open(io.BytesIO(png)))


def omniglot_alphabets(
    split: str = "lake", subset: str = "background", *, data_root: str | os.PathLike[str] | None = None
) -> list[str]:
    """The alphabets of a subset's archives, sorted, read from the archives' directories (nothing decoded)."""
    archives, _, _ = split_classes(split, subset, None)
    found = set()
    for archive in archives:
        path = fetch(ARCHIVES[archive].remote, data_root, False)
        found |= {alphabet for alphabet, _ in index_archive(path, ARCHIVES[archive])}
    return sorted(found)


def split_classes(split: str, subset: str, rotations: bool | None) -> tuple[list[str], list[str], bool]:
    """Archives to read and class names (``Alphabet/characterNN[/rotDDD]``) of a split."""
    if split not in SPLITS:
        raise UnknownNameError(f"unknown Omniglot split {split!r}; valid splits: {', '.join(SPLITS)}")
    if subset not in SPLITS[split]:
        raise UnknownNameError(
            f"unknown subset {subset!r} of Omniglot split {split!r}; valid: {', '.join(SPLITS[split])}"
        )
    if split == "vinyals":
        rotate = True if rotations is None else rotations
        names = splits.expand(splits.VINYALS_V1[subset], splits.ROTATIONS if rotate else (0,))
        return ["images_background", "images_evaluation"], names, rotate
    return [f"images_{subset}"], [], bool(rotations)


def load_omniglot(
    split: str = "vinyals",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    image_size: int = 28,
    rotations: bool | None = None,
    download: bool = False,
    alphabets: Collection[str] | None = None,
) -> ImageClassDataset:
    """Load one subset of an Omniglot class split into memory.

    Args:
        split: ``vinyals`` (Vinyals et al. 2016 character split, as used by MAML and Prototypical
            Networks; rotations on by default) or ``lake`` (the official background / evaluation
            archives, and the minimal ``background_small1/2`` sets; rotations off by default).
        subset: ``train``/``val``/``test``/``trainval`` for ``vinyals``; ``background``/``evaluation``/
            ``background_small1``/``background_small2`` for ``lake``.
        image_size: side of the square images after resizing (105 keeps the originals).
        rotations: add 90/180/270-degree rotations of every character as new classes.
        download: fetch missing archives from the official location (checksum-verified).
        alphabets: only these alphabets' characters (the others are not decoded).
    """
    archives, class_names, rotate = split_classes(split, subset, rotations)
    members: dict[tuple[str, int], tuple[str, list[str]]] = {}
    paths = {}
    for archive in archives:
        paths[archive] = fetch(ARCHIVES[archive].remote, data_root, download)
        for key, files in index_archive(paths[archive], ARCHIVES[archive]).items():
            members[key] = (archive, files)
    if not class_names:
        angles = splits.ROTATIONS if rotate else (0,)
        class_names = [
            f"{a}/character{c:02d}/rot{r:03d}" if rotate else f"{a}/character{c:02d}"
            for a, c in sorted(members)
            for r in angles
        ]
    if alphabets is not None:
        unknown = sorted(set(alphabets) - {a for a, _ in members})
        if unknown:
            raise DataError(f"no alphabet {', '.join(unknown)} in the archives {', '.join(archives)}")
        class_names = [name for name in class_names if name.split("/")[0] in alphabets]
    per_class, decoded = [], {}
    handles = {name: zipfile.ZipFile(path) for name, path in paths.items()}
    try:
        for class_name in class_names:
            alphabet, character, *rot = class_name.split("/")
            key = (alphabet, int(character.removeprefix("character")))
            if key not in members:
                raise DataError(f"split class {class_name} is not in the archives {', '.join(archives)}")
            if key not in decoded:
                archive, names = members[key]
                decoded[key] = torch.stack([decode(handles[archive].read(f), image_size) for f in names])
            quarter_turns = int(rot[0].removeprefix("rot")) // 90 if rot else 0
            per_class.append(torch.rot90(decoded[key], quarter_turns, dims=(-2, -1)))
    finally:
        for handle in handles.values():
            handle.close()
    return ImageClassDataset.from_class_tensors(f"omniglot/{split}/{subset}", per_class, class_names)
