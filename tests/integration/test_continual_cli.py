"""`ltl continual train` on the real Omniglot background characters: resumable in its run folder."""

import json

import pytest
import torch
from click.testing import CliRunner

from learntolearn.cli.main import cli
from learntolearn.continual.runs import omniglot_classes
from learntolearn.files import load_tensors


@pytest.mark.slow  # decodes the 19,280 background drawings three times
def test_meta_training_reads_omniglots_background_and_resumes(data_root, tmp_path):
    images = omniglot_classes("background", str(data_root))
    assert images.shape == (964, 20, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    run = tmp_path / "run"
    args = ["continual", "train", "oml-omniglot", "--run", str(run), "--data-root", str(data_root)]
    result = CliRunner().invoke(cli, [*args, "--steps", "1"])
    assert result.exit_code == 0, result.output
    first = load_tensors(run / "checkpoint.pt", "test")
    result = CliRunner().invoke(cli, [*args, "--steps", "2"])
    assert result.exit_code == 0 and "resuming at step 1" in result.output, result.output
    second = load_tensors(run / "checkpoint.pt", "test")
    assert second["step"] == 2 and not torch.equal(
        first["params"]["rln.conv0.weight"], second["params"]["rln.conv0.weight"]
    )
    result = CliRunner().invoke(
        cli,
        [
            "continual",
            "eval",
            str(run),
            "--classes",
            "3,6",
            "--orders",
            "2",
            "--lr",
            "0.01",
            "--data-root",
            str(data_root),
        ],
    )
    assert result.exit_code == 0, result.output
    curves = json.loads((run / "continual.json").read_text())["curves"]
    assert [len(curves[c]["memorisation"]) for c in ("3", "6")] == [2, 2]
