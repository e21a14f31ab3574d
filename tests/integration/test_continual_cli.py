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


@pytest.mark.slow  # decodes Omniglot and reads Fashion-MNIST; a few steps of everything
def test_the_reproduce_scripts_score_every_learner_on_the_real_files(data_root, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = tmp_path / "oml"
    result = CliRunner().invoke(
        cli, ["continual", "train", "oml-omniglot", "--steps", "1", "--run", str(run), "--data-root", str(data_root)]
    )
    assert result.exit_code == 0, result.output

    def script(name, *args):
        command = [sys.executable, str(root / "scripts/reproduce" / name), "--data-root", str(data_root), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=500)
        assert done.returncode == 0, done.stderr[-2000:]

    out = ["--out", str(tmp_path), "--run", str(run)]
    script(
        "continual_omniglot.py",
        *out,
        "--classes",
        "3",
        "5",
        "--orders",
        "2",
        "--validation-classes",
        "3",
        "--validation-orders",
        "1",
        "--pretrain-steps",
        "2",
        "--figures",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "continual-omniglot.json").read_text())
    assert set(record["results"]) == {
        "OML",
        "online from scratch (whole network)",
        "pretrained, output layer fine-tuned",
        "pretrained, whole network fine-tuned",
        "nearest class mean of pretrained features",
    }
    assert all(len(r["5"]["generalisation"]) == 2 for r in record["results"].values())
    assert (tmp_path / "continual-omniglot.png").stat().st_size > 0

    work = ["--work", str(tmp_path / "stages"), "--steps", "3", "--pretrain-steps", "2"]
    script("continual_in_context.py", *out, *work, "--sequences", "2", "--validation-sequences", "1")
    record = json.loads((tmp_path / "continual-in-context.json").read_text())
    fashion = record["results"]["fashion-mnist, 5 class pairs"]
    assert set(fashion) == {
        "in-context, single",
        "in-context, current",
        "in-context, acl",
        "OML",
        "online from scratch (whole network)",
        "pretrained, output layer fine-tuned",
    }
    scores = torch.tensor(fashion["OML"]["scores"])  # per sequence, after task t, on task s (-1 where s > t)
    later = torch.ones(5, 5).triu(1).bool()  # task s not yet learnt after task t
    assert scores.shape == (2, 5, 5) and (scores[:, later] == -1).all() and (scores[:, ~later] >= 0).all()
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == [
        ".lock",
        "acl.pt",
        "current.pt",
        "encoder.pt",
        "single.pt",
    ]
