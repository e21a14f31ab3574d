"""A user's image files become the tensors the model was trained on: transparency, EXIF, formats, hidden files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from learntolearn.data.images import Preprocessing, query_labels, read_query_folder, read_support_folder
from learntolearn.errors import DataError

GLYPHS = Preprocessing(channels=1, size=8, invert=True)  # dark ink on white files, inverted to bright ink


def stroke(mode: str, ink, ground) -> Image.Image:
    image = Image.new(mode, (8, 8), ground)
    for i in range(8):
        image.putpixel((i, i), ink)
    return image


def test_a_transparent_background_becomes_the_training_background(tmp_path):
    stroke("L", 0, 255).save(tmp_path / "opaque.png")
    stroke("RGBA", (0, 0, 0, 255), (0, 0, 0, 0)).save(tmp_path / "rgba.png")  # what canvases export
    stroke("LA", (0, 255), (0, 0)).save(tmp_path / "grey-alpha.png")
    opaque = GLYPHS.load(tmp_path / "opaque.png")
    assert opaque.sum() > 0 and opaque.float().mean() < 255 / 2
    for name in ("rgba.png", "grey-alpha.png"):
        assert torch.equal(GLYPHS.load(tmp_path / name), opaque), name


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("L", (8, 8), 255)
    image.putpixel((0, 7), 0)  # one dark pixel, bottom left
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = Image.open(tmp_path / "phone.jpg").rotate(-90)
    upright.save(tmp_path / "upright.png")
    loaded = GLYPHS.load(tmp_path / "phone.jpg")
    assert torch.equal(loaded, GLYPHS.load(tmp_path / "upright.png"))
    assert int(loaded[0].argmax()) // 8 == 0, "the dark pixel ends up in the top row after the rotation"


def test_hidden_entries_are_skipped_with_a_count_and_common_formats_are_read(tmp_path):
    support = tmp_path / "support"
    for name, ink in (("a", 0), ("b", 255)):  # different images: the same file in two classes is warned about
        (support / name).mkdir(parents=True)
        stroke("L", ink, 255 - ink).save(support / name / "1.png")
    stroke("L", 0, 255).save(support / "b" / "2.bmp")
    stroke("L", 0, 255).save(support / "b" / "3.webp")
    (support / ".ipynb_checkpoints").mkdir()
    (support / "a" / "._1.png").write_bytes(b"AppleDouble")
    with pytest.warns(UserWarning) as caught:
        images, labels, classes = read_support_folder(support, GLYPHS)
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        f"skipped 1 hidden entry in {support} (.ipynb_checkpoints)",
        f"skipped 1 hidden entry in {support / 'a'} (._1.png)",
    ]
    assert classes == ["a", "b"] and labels.tolist() == [0, 1, 1, 1] and images.shape == (4, 1, 8, 8)


def test_a_labelled_query_folder_is_read_and_a_huge_image_is_one_line(tmp_path):
    (tmp_path / "query" / "cats").mkdir(parents=True)
    (tmp_path / "query" / "empty").mkdir()
    stroke("L", 0, 255).save(tmp_path / "query" / "cats" / "1.png")
    images, files = read_query_folder(tmp_path / "query", GLYPHS)
    assert images.shape == (1, 1, 8, 8) and query_labels(tmp_path / "query", files) == ["cats"]
    stroke("L", 0, 255).save(tmp_path / "query" / "loose.png")  # a flat folder: its sub-folders are not read
    images, files = read_query_folder(tmp_path / "query", GLYPHS)
    assert [f.name for f in files] == ["loose.png"] and query_labels(tmp_path / "query", files) is None
    (tmp_path / "query" / "loose.png").unlink()
    (tmp_path / "query" / "cats" / "1.png").unlink()
    with pytest.raises(DataError, match="holds no images .*, neither directly nor in one sub-folder per class"):
        read_query_folder(tmp_path / "query", GLYPHS)
    stroke("L", 0, 255).save(tmp_path / "query" / "cats" / "1.png")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 10  # as a 14000x14000 file does against the default limit
        with pytest.raises(DataError, match="too large to decode safely"):
            GLYPHS.load(tmp_path / "query" / "cats" / "1.png")
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def test_photos_keep_their_centre_square_and_transparency_goes_on_the_matte():
    wide = Image.new("RGB", (30, 10), (255, 0, 0))
    wide.paste((0, 0, 255), (10, 0, 20, 10))  # a blue centre square between red sides
    photo = Preprocessing(channels=3, size=10, invert=False, resize="center-crop", matte=255)
    assert photo.from_image(wide)[:, 5, 5].tolist() == [0, 0, 255] and photo.from_image(wide)[2].min() > 200
    squeezed = Preprocessing(channels=3, size=10, invert=False).from_image(wide)
    assert squeezed[:, 5, 0].tolist()[0] > 200, "stretch keeps the red sides, squeezed"
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert photo.from_image(clear).min() == 255, "a transparent photo is white on the matte, not black"
    with pytest.raises(DataError, match="unknown resize policy 'pad'"):
        Preprocessing(channels=3, size=10, invert=False, resize="pad")


@pytest.mark.parametrize(
    "mode, make",
    [
        ("1", lambda a: Image.fromarray(a > 127)),
        ("L", lambda a: Image.fromarray(a)),
        ("LA", lambda a: Image.fromarray(np.stack([a, np.full_like(a, 255)], -1), mode="LA")),
        ("P", lambda a: Image.fromarray(a).convert("P")),
        ("RGB", lambda a: Image.fromarray(np.stack([a] * 3, -1))),
        ("RGBA", lambda a: Image.fromarray(np.stack([a] * 3 + [np.full_like(a, 255)], -1))),
        ("CMYK", lambda a: Image.fromarray(np.stack([a] * 3, -1)).convert("CMYK")),
        ("I;16", lambda a: Image.fromarray(a.astype(np.uint16) * 257)),
        ("I", lambda a: Image.fromarray(a.astype(np.int32) * 257)),
        ("F", lambda a: Image.fromarray(a.astype(np.float32) / 255)),
    ],
)
def test_every_pil_mode_gives_the_grey_levels_of_its_8_bit_version(mode, make):
    """16-bit and float images were clipped to white by PIL's convert; now every mode reads as its 8-bit twin."""
    ramp = np.linspace(0, 255, 16 * 24).reshape(16, 24).round().astype(np.uint8)
    image = make(ramp)
    assert image.mode == mode
    reference = Preprocessing(channels=1, size=8, invert=False).from_image(Image.fromarray(ramp))
    got = Preprocessing(channels=1, size=8, invert=False).from_image(image)
    tolerance = 255 if mode in ("1", "P") else 2  # 1-bit and palette images quantise the ramp
    assert (got.int() - reference.int()).abs().max() <= tolerance
    if mode not in ("1", "P"):
        assert abs(got.float().mean() - reference.float().mean()) < 2


def test_the_same_file_in_two_class_folders_is_named_in_a_warning(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    stroke("L", 0, 255).save(tmp_path / "a" / "1.png")
    (tmp_path / "b" / "copy.png").write_bytes((tmp_path / "a" / "1.png").read_bytes())
    stroke("L", 255, 0).save(tmp_path / "b" / "2.png")
    with pytest.warns(UserWarning, match=r"the same image is an example of two classes: .*a/1.png and .*b/copy.png"):
        read_support_folder(tmp_path, GLYPHS)


def test_large_photos_shrink_before_conversion_and_keep_their_exif_orientation(tmp_path):
    gradient = Image.linear_gradient("L").resize((1200, 800)).convert("RGB")  # dark at the top, light below
    gradient.paste((0, 0, 255), (0, 0, 600, 800))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the blue half is on top
    gradient.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    gradient.save(tmp_path / "plain.png")
    photo = Preprocessing(channels=3, size=28, invert=False, resize="center-crop")
    rotated = photo.load(tmp_path / "rotated.jpg")
    (top_red, _, top_blue), (low_red, _, low_blue) = rotated[:, 2, 14].tolist(), rotated[:, 25, 14].tolist()
    assert top_red < 60 < 200 < top_blue and abs(low_red - low_blue) < 20, "blue above grey after EXIF"
    square = gradient.crop((200, 0, 1000, 800)).resize((28, 28), Image.Resampling.LANCZOS)
    direct = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).view(28, 28, 3).permute(2, 0, 1)
    direct = direct.to(torch.int16)
    shrunk = photo.load(tmp_path / "plain.png").to(torch.int16)
    assert (shrunk - direct).abs().float().mean() < 2 and (shrunk - direct).abs().max() <= 40


@pytest.mark.slow
def test_an_8000_pixel_photo_is_read_in_bounded_memory(tmp_path):
    """A JPEG is decoded at reduced scale; a PNG costs its decoded size once, not one copy per conversion step."""
    import subprocess
    import sys

    noise = Image.effect_noise((8000, 8000), 40).convert("RGB")  # 192 MB decoded
    noise.save(tmp_path / "big.jpg", quality=80)
    noise.save(tmp_path / "big.png", compress_level=1)
    del noise
    measure = (
        "import resource, sys\n"
        "from learntolearn.data.images import Preprocessing\n"
        "photo = Preprocessing(3, 224, invert=False, resize='center-crop')\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert photo.load(sys.argv[1]).shape == (3, 224, 224)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    growth = {
        suffix: int(
            subprocess.run(
                [sys.executable, "-c", measure, str(tmp_path / f"big.{suffix}")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for suffix in ("jpg", "png")
    }
    assert growth["jpg"] < 50 and growth["png"] < 300, f"peak memory growth in MB: {growth}"
