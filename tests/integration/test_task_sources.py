"""Data sets other than images train through the same Trainer, checkpoints and resume as Omniglot does."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import real_data_root

from learntolearn.cli.main import cli


@pytest.fixture(scope="module")
def clinc_root():
    root = real_data_root()
    if root is None or not (root / "clinc150" / "data_full.json").exists():
        pytest.skip("CLINC150's data_full.json not found under the data root ($LTL_DATA or ../shared/data)")
    pytest.importorskip("transformers", reason="the text extra (pip install 'learntolearn[text]') is not installed")
    return root


@pytest.mark.slow
def test_clinc150_trains_resumes_and_evaluates_through_ltl_train(clinc_root, tmp_path):
    run = tmp_path / "run"
    options = [
        "--dataset",
        "clinc150",
        "--split",
        "intent",
        "--algorithm",
        "protonet",
        "--backbone",
        "adapter",
        "--ways",
        "5",
        "--shots",
        "1",
        "--queries",
        "5",
        "--val-every",
        "10",
        "--val-episodes",
        "10",
        "--test-episodes",
        "50",
        "--checkpoint-every",
        "10",
        "--data-root",
        str(clinc_root),
        "--no-download",
    ]
    runner = CliRunner()
    result = runner.invoke(cli, ["train", *options, "--steps", "20", "--out", str(run)])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["episodes"]["dataset"] == "clinc150" and json.loads((run / "model_spec.json").read_text()) == {
        "input_shape": [384],
        "train_classes": 90,
    }
    result = runner.invoke(cli, ["train", "--resume", str(run), "--steps", "40"])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "results.json").read_text())
    assert summary["steps"] == 40 and summary["test_accuracy"] > 0.6, summary["test_accuracy"]  # chance is 0.2
    result = runner.invoke(cli, ["eval", str(run), "--episodes", "20", "--ways", "10"])
    assert result.exit_code == 0 and "10-way 1-shot: accuracy" in result.output, result.output


@pytest.mark.slow
def test_maml_learns_sinusoids_through_the_trainer_and_resumes(tmp_path):
    from learntolearn.engine.config import TrainConfig
    from learntolearn.engine.evaluate import evaluate
    from learntolearn.engine.trainer import Trainer

    config = TrainConfig.create(
        algorithm="maml",
        backbone="mlp",
        dataset="sinusoid",
        shots=10,
        queries=10,
        steps=400,
        meta_batch=5,
        lr=3e-3,
        inner_lr=0.01,
        inner_steps=1,
        test_inner_steps=1,
        val_every=200,
        val_episodes=20,
        test_episodes=50,
        checkpoint_every=200,
    )
    first = Trainer(config.with_keys(steps=200), tmp_path / "run", progress=False)
    before = evaluate(first.algorithm, first.source.test(), progress=False)
    first.train()
    result = Trainer(config, tmp_path / "run", resume=True, progress=False).run()
    assert result.metric == "mse" and result.mean < 0.5 * before.mean, (before.mean, result.mean)
    summary = json.loads((tmp_path / "run" / "results.json").read_text())
    assert summary["steps"] == 400 and summary["test_mse"] == pytest.approx(result.mean) and summary["best_val_mse"] > 0
    evaluated = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--episodes", "30", "--shots", "5"])
    assert evaluated.exit_code == 0 and "sinusoid 5-shot: mse query MSE" in evaluated.output, evaluated.output


def test_a_classifier_is_refused_on_regression_tasks(tmp_path):
    from learntolearn.engine.config import TrainConfig
    from learntolearn.engine.trainer import Trainer
    from learntolearn.errors import ConfigError

    with pytest.raises(ConfigError, match="PrototypicalNetworks classifies; these tasks are regressions"):
        Trainer(TrainConfig.create(algorithm="protonet", backbone="mlp", dataset="sinusoid"), tmp_path / "r")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:1 text\\(s\\) longer than the encoder's 256-token window")  # one long sentence
def test_fewrel_trains_through_ltl_train_on_one_file_and_tests_on_another(tmp_path):
    """FewRel's published files are its subsets: relations of the NYT file train, PubMed's test (FewRel 2.0)."""
    root = real_data_root()
    if root is None or not all((root / "fewrel" / f"{name}.json").exists() for name in ("val_nyt", "val_pubmed")):
        pytest.skip("FewRel's val_nyt.json and val_pubmed.json not found under the data root")
    pytest.importorskip("transformers", reason="the text extra (pip install 'learntolearn[text]') is not installed")
    run = tmp_path / "run"
    options = "--dataset fewrel --split files --train-subset val_nyt --test-subset val_pubmed --val-every 0"
    options += " --algorithm protonet --backbone adapter --ways 5 --shots 1 --queries 5 --test-episodes 100"
    result = CliRunner().invoke(
        cli, ["train", *options.split(), "--steps", "30", "--data-root", str(root), "--no-download", "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "model_spec.json").read_text()) == {"input_shape": [384], "train_classes": 25}
    summary = json.loads((run / "results.json").read_text())
    assert summary["test_accuracy"] > 0.35, summary["test_accuracy"]  # chance is 0.2
    wrong = CliRunner().invoke(cli, ["train", "--dataset", "fewrel", "--split", "files", "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 1 and "unknown subset 'train' of fewrel/files; valid subsets: val_wiki" in wrong.output
