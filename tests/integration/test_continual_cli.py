"""`ltl continual train` and `ltl continual eval` on the real Omniglot archives."""

import json

import pytest
import torch
from click.testing import CliRunner

from learntolearn.cli.main import cli
from learntolearn.files import load_tensors


@pytest.mark.slow  # decodes the background and evaluation drawings once each
def test_meta_training_and_scoring_read_omniglots_official_archives(data_root, tmp_path):
    run = tmp_path / "run"
    common = ["--run", str(run), "--data-root", str(data_root)]
    result = CliRunner().invoke(cli, ["continual", "train", "oml-omniglot", "--steps", "1", *common])
    assert result.exit_code == 0, result.output
    state = load_tensors(run / "checkpoint.pt", "test")
    assert state["step"] == 1 and torch.isfinite(torch.tensor(state["losses"])).all()
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
    scored = json.loads((run / "continual.json").read_text())
    assert [len(scored["curves"][c]["memorisation"]) for c in ("3", "6")] == [2, 2]
    assert all(0 <= v <= 1 for c in ("3", "6") for v in scored["curves"][c]["generalisation"])
