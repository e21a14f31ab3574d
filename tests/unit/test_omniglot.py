"""The Omniglot loader against the real archives (skipped when the data root is absent)."""

import zipfile

import pytest
import torch

from learntolearn.data import load_dataset
from learntolearn.data.omniglot import ARCHIVES, index_archive, load_omniglot
from learntolearn.errors import DataError


@pytest.fixture(scope="module")
def background(data_root):
    return load_omniglot("lake", "background", data_root=data_root)


@pytest.fixture(scope="module")
def vinyals_test(data_root):
    return load_omniglot("vinyals", "test", data_root=data_root)


def test_official_archives_have_the_published_counts(data_root):
    bg = index_archive(data_root / "omniglot" / "images_background.zip", ARCHIVES["images_background"])
    ev = index_archive(data_root / "omniglot" / "images_evaluation.zip", ARCHIVES["images_evaluation"])
    assert (len(bg), len(ev)) == (964, 659)
    assert all(len(files) == 20 for files in [*bg.values(), *ev.values()])


def test_lake_split_loads_964_background_characters_of_20_drawings(background, data_root):
    assert background.n_classes == 964
    assert background.counts.eq(20).all()
    assert background.images.shape == (964 * 20, 1, 28, 28) and background.images.dtype == torch.uint8
    evaluation = load_omniglot("lake", "evaluation", data_root=data_root)
    assert evaluation.n_classes == 659 and evaluation.counts.eq(20).all()


def test_images_are_ink_on_black_after_explicit_1bit_conversion(background):
    first = background.images[0, 0].float()
    assert first.max() == 255 and first.min() == 0
    assert first.mean() < 60, "strokes cover a small part of the image, so ink must be the bright value"


def test_vinyals_test_split_has_423_characters_in_four_rotations(vinyals_test):
    assert vinyals_test.n_classes == 423 * 4
    assert vinyals_test.class_names[:4] == tuple(f"Gurmukhi/character42/rot{r:03d}" for r in (0, 90, 180, 270))
    base = vinyals_test.images[vinyals_test.offsets[0] : vinyals_test.offsets[1]]
    quarter = vinyals_test.images[vinyals_test.offsets[1] : vinyals_test.offsets[2]]
    assert torch.equal(quarter, torch.rot90(base, 1, dims=(-2, -1)))


def test_image_size_is_configurable(data_root):
    small = load_omniglot("lake", "background_small1", data_root=data_root, image_size=20)
    assert small.n_classes == 136 and small.images.shape[-2:] == (20, 20)
    original = load_omniglot("lake", "background_small2", data_root=data_root, image_size=105)
    assert original.n_classes == 156 and original.images.shape[-2:] == (105, 105)


def test_rotations_are_new_classes_on_request(data_root):
    rotated = load_omniglot("lake", "background_small1", data_root=data_root, rotations=True, image_size=14)
    assert rotated.n_classes == 4 * 136


def test_unknown_split_and_subset_list_the_valid_ones():
    with pytest.raises(KeyError, match="valid splits: vinyals, lake"):
        load_dataset("omniglot", "nope", "train")
    with pytest.raises(KeyError, match="valid subsets: train, val, test, trainval"):
        load_dataset("omniglot", "vinyals", "training")
    with pytest.raises(
        KeyError,
        match="valid data sets: cifar100, clinc150, fewrel, mini_imagenet, omniglot, synthetic, tiered_imagenet",
    ):
        load_dataset("mnist", "x", "y")


def test_missing_archive_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load_omniglot("vinyals", "train", data_root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "omniglot" / "images_background.zip") in message
    assert "--data-root" in message and "LTL_DATA" in message


def test_missing_archive_with_failed_download_says_where_it_looked(tmp_path, monkeypatch):
    from learntolearn.data import omniglot

    monkeypatch.setitem(
        omniglot.ARCHIVES,
        "images_background",
        ARCHIVES["images_background"].__class__(
            ARCHIVES["images_background"].remote.__class__("images_background.zip", "http://127.0.0.1:9/none.zip", "0"),
            30,
            964,
            19280,
        ),
    )
    with pytest.raises(DataError, match="download from http://127.0.0.1:9/none.zip failed"):
        load_omniglot("lake", "background", data_root=tmp_path, download=True)
    assert list((tmp_path / "omniglot").iterdir()) == []


def test_corrupt_archive_is_rejected_with_a_fix(tmp_path):
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_background.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip archive.*download it again"):
        load_omniglot("lake", "background", data_root=tmp_path)


def test_archive_with_wrong_content_is_rejected_by_counts(tmp_path):
    (tmp_path / "omniglot").mkdir()
    with zipfile.ZipFile(tmp_path / "omniglot" / "images_background.zip", "w") as z:
        z.writestr("images_background/Latin/character01/0001_01.png", b"")
    with pytest.raises(DataError, match="found 1 alphabets, 1 characters, 1 images; expected 30, 964, 19280"):
        load_omniglot("lake", "background", data_root=tmp_path)
