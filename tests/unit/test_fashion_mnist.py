"""Fashion-MNIST's IDX files: read, grouped by class, checked by the checksum of their decompressed bytes."""

import gzip
import hashlib

import pytest
import torch
from helpers import real_data_root

from learntolearn.data import fashion_mnist
from learntolearn.data.archives import RemoteFile, download
from learntolearn.errors import DataError


def idx(array: torch.Tensor) -> bytes:
    """``array`` (uint8) as an IDX file: magic, dimensions, bytes."""
    header = (0x0800 + array.dim()).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.numpy().tobytes()


@pytest.fixture
def small_files(tmp_path, monkeypatch):
    """Twelve 28x28 images (image i filled with i) of labels 2, 0, 2, 1, 0, 3..9 in the official file names."""
    images = torch.arange(12, dtype=torch.uint8).view(12, 1, 1).expand(12, 28, 28).contiguous()
    labels = torch.tensor([2, 0, 2, 1, 0, 3, 4, 5, 6, 7, 8, 9], dtype=torch.uint8)
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    digests = dict(fashion_mnist.FILES)
    for name, array in (("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz", labels)):
        raw = idx(array)
        (folder / name).write_bytes(gzip.compress(raw))
        digests[name] = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(fashion_mnist, "FILES", digests)
    return tmp_path


def test_images_are_grouped_by_class_in_file_order(small_files):
    data = fashion_mnist.load_fashion_mnist("official", "test", data_root=small_files)
    assert data.images.shape == (12, 1, 28, 28) and data.offsets.tolist() == [0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert data.images[:5, 0, 0, 0].tolist() == [1, 4, 3, 0, 2]  # class 0 (images 1, 4), class 1 (3), class 2 (0, 2)
    assert data.class_names[0] == "T-shirt-top" and data.name == "fashion_mnist/official/test"


def test_a_file_with_other_contents_is_refused_by_its_checksum(small_files):
    path = small_files / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx(torch.zeros(12, dtype=torch.uint8))))
    with pytest.raises(DataError, match="does not hold the official Fashion-MNIST t10k-labels-idx1-ubyte.gz"):
        fashion_mnist.load_fashion_mnist("official", "test", data_root=small_files)
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="is not a readable gzip file"):
        fashion_mnist.load_fashion_mnist("official", "test", data_root=small_files)


def test_a_download_is_checked_on_its_decompressed_bytes(tmp_path):
    raw = idx(torch.zeros(3, dtype=torch.uint8))
    (tmp_path / "served.gz").write_bytes(gzip.compress(raw, mtime=0))
    good = RemoteFile("x.gz", (tmp_path / "served.gz").as_uri(), hashlib.sha256(raw).hexdigest(), gunzipped=True)
    assert download(good, tmp_path / "got", progress=False).read_bytes() == (tmp_path / "served.gz").read_bytes()
    bad = RemoteFile("y.gz", good.url, "0" * 64, gunzipped=True)
    with pytest.raises(DataError, match="of the decompressed bytes"):
        download(bad, tmp_path / "got", progress=False)
    assert not (tmp_path / "got" / "y.gz").exists()


def test_the_real_files_hold_the_published_counts():
    root = real_data_root()
    if root is None or not (root / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not found under the data root ($LTL_DATA or ../shared/data)")
    test = fashion_mnist.load_fashion_mnist("official", "test", data_root=root)
    assert test.images.shape == (10_000, 1, 28, 28) and test.counts.tolist() == [1000] * 10
    train = fashion_mnist.load_fashion_mnist("official", "train", data_root=root)
    assert train.counts.tolist() == [6000] * 10
