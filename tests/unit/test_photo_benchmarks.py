"""CIFAR-FS, FC100 and mini-ImageNet loaders on small files written in exactly the published formats."""

import json
import os
import pickle

import numpy as np
import pytest
from helpers import real_data_root
from PIL import Image

from learntolearn.data import load_dataset
from learntolearn.data.imagenet_like import load_cifar_fs, load_mini_imagenet, load_tiered_imagenet
from learntolearn.data.splits.cifar100 import SPLITS
from learntolearn.errors import DataError


@pytest.fixture
def cifar_root(tmp_path):
    """cifar-100-python/{meta,train,test} with 3 training and 1 test image per fine class; image values = label."""
    names = json.loads((real_root_or_skip() / "cifar100_splits" / "cifar100_classes.json").read_text())[
        "fine_label_names"
    ]
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names, "coarse_label_names": []}))
    for part, per_class in (("train", 3), ("test", 1)):
        labels = [label for label in range(100) for _ in range(per_class)]
        data = np.repeat(np.array(labels, dtype=np.uint8)[:, None], 3072, axis=1)
        (folder / part).write_bytes(pickle.dumps({b"data": data, b"fine_labels": labels}, protocol=2))
    return tmp_path, names


def real_root_or_skip():
    root = real_data_root()
    if root is None or not (root / "cifar100_splits").is_dir():
        pytest.skip("the CIFAR-100 split lists (cifar100_splits/) are not under the data root")
    return root


def test_cifar_fs_and_fc100_pool_train_and_test_images_per_class(cifar_root):
    root, names = cifar_root
    data = load_cifar_fs("cifar-fs", "val", data_root=root)
    assert data.class_names == SPLITS["cifar-fs"]["val"] and data.images.shape == (16 * 4, 3, 32, 32)
    first = names.index(data.class_names[0])
    assert data.counts.tolist() == [4] * 16 and int(data.images[0, 0, 0, 0]) == first
    fc100 = load_dataset("cifar100", "fc100", "test", data_root=root, image_size=32)
    assert fc100.n_classes == 20 and not set(fc100.class_names) & set(SPLITS["fc100"]["train"])


def test_a_pickle_that_would_run_code_is_refused(cifar_root):
    root, _ = cifar_root

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch /tmp/should-not-exist",))

    (root / "cifar100" / "cifar-100-python" / "train").write_bytes(pickle.dumps({b"data": Payload()}))
    with pytest.raises(DataError, match="refusing to load posix.system|refusing to load os.system"):
        load_cifar_fs("cifar-fs", "train", data_root=root)


def test_the_split_lists_agree_with_the_data_roots_copies():
    root = real_root_or_skip() / "cifar100_splits"
    for split, folder in (("cifar-fs", "cifar_fs"), ("fc100", "fc100")):
        for subset, classes in SPLITS[split].items():
            assert list(classes) == (root / folder / f"{subset}.txt").read_text().split()


def test_mini_imagenet_from_csv_and_image_folder_or_from_the_pickle_cache(tmp_path):
    folder = tmp_path / "mini_imagenet"
    (folder / "images").mkdir(parents=True)
    rows = ["filename,label"]
    for c, label in enumerate(("n02", "n01")):
        for i in range(2):
            name = f"{label}0000000{i}.jpg"
            Image.new("RGB", (100, 90), (40 * c, 0, 0)).save(folder / "images" / name)
            rows.append(f"{name},{label}")
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    data = load_mini_imagenet("ravi", "train", data_root=tmp_path)
    assert data.class_names == ("n01", "n02") and data.images.shape == (4, 3, 84, 84)
    assert int(data.images[0, 0].float().mean()) == 40 and int(data.images[2, 0].float().mean()) == 0
    pixels = np.zeros((3, 84, 84, 3), dtype=np.uint8)
    pixels[2] = 7
    cache = {"image_data": pixels, "class_dict": {"n05": [2], "n04": [0, 1]}}
    (folder / "mini-imagenet-cache-val.pkl").write_bytes(pickle.dumps(cache))
    val = load_mini_imagenet("ravi", "val", data_root=tmp_path)
    assert val.class_names == ("n04", "n05") and val.counts.tolist() == [2, 1] and int(val.images[2].max()) == 7
    with pytest.raises(DataError, match="test.csv not found"):
        load_mini_imagenet("ravi", "test", data_root=tmp_path)
    (folder / "images" / "n0100000000.jpg").unlink()
    with pytest.raises(DataError, match="n0100000000.jpg not found \\(listed in"):
        load_mini_imagenet("ravi", "train", data_root=tmp_path)


def test_tiered_imagenet_from_the_original_png_pickles_or_the_npz_copies(tmp_path):
    import io

    folder = tmp_path / "tiered_imagenet"
    folder.mkdir()
    labels = [1, 0, 1, 2, 0]
    encoded = []
    for i, label in enumerate(labels):
        buffer = io.BytesIO()
        Image.new("RGB", (84, 84), (10 * i, 50 * label, 0)).save(buffer, format="PNG")
        encoded.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))  # as cv2.imencode gives them
    record = {
        "label_specific": np.array(labels),
        "label_general": np.array([0, 0, 0, 1, 0]),
        "label_specific_str": ["n01", "n02", "n03"],
        "label_general_str": ["animal", "device"],
    }
    (folder / "train_images_png.pkl").write_bytes(pickle.dumps(encoded, protocol=2))
    (folder / "train_labels.pkl").write_bytes(pickle.dumps(record, protocol=2))
    data = load_tiered_imagenet("ren", "train", data_root=tmp_path)
    assert data.class_names == ("n01", "n02", "n03") and data.counts.tolist() == [2, 2, 1]
    assert data.images.shape == (5, 3, 84, 84)
    assert data.images[:, 0, 0, 0].tolist() == [10, 40, 0, 20, 30], "grouped by class, in file order within one"
    assert data.images[:, 1, 0, 0].tolist() == [0, 0, 50, 50, 100]
    pixels = np.zeros((3, 84, 84, 3), dtype=np.uint8)
    pixels[1] = 9
    np.savez(folder / "val_images.npz", images=pixels)
    (folder / "val_labels.pkl").write_bytes(pickle.dumps({"labels": [352, 351, 352]}))  # MetaOptNet's: ids run on
    val = load_tiered_imagenet("ren", "val", data_root=tmp_path, image_size=42)
    assert val.class_names == ("class351", "class352") and val.images.shape == (3, 3, 42, 42)
    assert val.counts.tolist() == [1, 2] and int(val.images[0].max()) == 9
    (folder / "test_labels.pkl").write_bytes(pickle.dumps(record))
    with pytest.raises(DataError, match="neither test_images.npz nor test_images_png.pkl"):
        load_tiered_imagenet("ren", "test", data_root=tmp_path)
    (folder / "test_images_png.pkl").write_bytes(pickle.dumps([np.zeros(10, dtype=np.uint8)] * 5))
    with pytest.raises(DataError, match="does not decode as PNG"):
        load_tiered_imagenet("ren", "test", data_root=tmp_path)
