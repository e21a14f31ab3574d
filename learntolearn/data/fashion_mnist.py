"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grey photos of 10 kinds of Zalando products.

Read from the official IDX files (``train-*`` 60,000 images, ``t10k-*`` 10,000), downloaded on first use
when allowed. Mirrors recompress the ``.gz`` files (Debian's package does), so the checksums are of the
decompressed bytes, verified on download and on every read. Few-shot use has no meta-training
classes here: all 10 classes are new to a pretrained encoder, and episodes draw from them.
"""

from __future__ import annotations

import gzip
import hashlib
import os

import torch

from learntolearn.data.archives import RemoteFile, fetch_file
from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.errors import DataError

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: file -> sha256 of its decompressed bytes (the official files')
FILES = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
REMOTE = {name: RemoteFile(name, URL + name, digest, gunzipped=True) for name, digest in FILES.items()}
CLASSES = ("T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle-boot")
#: the one split: the official training and test files
SPLITS = {"official": ("train", "test")}
PREFIX = {"train": "train", "test": "t10k"}


def read_idx(name: str, data_root: str | os.PathLike[str] | None, download: bool, dims: int) -> torch.Tensor:
    """The uint8 array of an IDX file with ``dims`` dimensions, after checking its decompressed checksum."""
    path = fetch_file(REMOTE[name], data_root, "fashion_mnist", download, "Fashion-MNIST file")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable gzip file ({err}); download it again") from err
    if hashlib.sha256(data).hexdigest() != FILES[name]:
        raise DataError(f"{path} does not hold the official Fashion-MNIST {name} (checksum differs); download it again")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x0800 + dims:
        raise DataError(f"{path}: not an IDX file of {dims} dimensions (magic {magic:#x})")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).view(shape)


def load_fashion_mnist(
    split: str = "official",
    subset: str = "test",
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **_: object,
) -> ImageClassDataset:
    """The ``train`` or ``test`` images of Fashion-MNIST, grouped by class, as ``(n, 1, 28, 28)`` uint8."""
    if subset not in SPLITS["official"]:
        raise DataError(f"unknown Fashion-MNIST subset {subset!r}; choose from train, test")
    images = read_idx(f"{PREFIX[subset]}-images-idx3-ubyte.gz", data_root, download, 3)
    labels = read_idx(f"{PREFIX[subset]}-labels-idx1-ubyte.gz", data_root, download, 1).long()
    if len(images) != len(labels):
        raise DataError(f"Fashion-MNIST {subset}: {len(images)} images but {len(labels)} labels")
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=len(CLASSES))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return ImageClassDataset(f"fashion_mnist/{split}/{subset}", images[order].unsqueeze(1), offsets, CLASSES)


def preprocessing(image_size: int = 28) -> Preprocessing:
    """How a photo becomes a Fashion-MNIST-like input: grey, squeezed to ``image_size``, bright item on black."""
    return Preprocessing(channels=1, size=image_size, invert=False)
