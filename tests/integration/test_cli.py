import json

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from learntolearn.cli.main import cli
from learntolearn.engine.config import TrainConfig

TINY = [
    "--dataset",
    "synthetic",
    "--split",
    "default",
    "--image-size",
    "16",
    "--steps",
    "20",
    "--val-every",
    "10",
    "--val-episodes",
    "10",
    "--test-episodes",
    "20",
    "--queries",
    "3",
    "--checkpoint-every",
    "10",
]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("command", [[], ["datasets"], ["train"], ["eval"], ["demo"]])
def test_every_command_has_help(runner, command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_train_eval_and_resume_from_the_command_line(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "over 20 episodes" in result.output
    assert json.loads((out / "results.json").read_text())["steps"] == 20
    result = runner.invoke(cli, ["eval", str(out), "--episodes", "12", "--ways", "3"])
    assert result.exit_code == 0, result.output
    assert "3-way 1-shot: accuracy" in result.output and "over 12 episodes" in result.output
    logged = json.loads((out / "evaluations.jsonl").read_text().splitlines()[-1])
    assert logged["evaluation"].endswith("3-way 1-shot") and logged["episodes"] == 12 and 0 <= logged["accuracy"] <= 1
    result = runner.invoke(cli, ["train", "--resume", str(out), "--steps", "30"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["steps"] == 30
    again = runner.invoke(cli, ["train", *TINY, "--out", str(out)])
    assert again.exit_code == 2 and f"already holds a run; continue it with `ltl train --resume {out}`" in again.output


def flat_config(run):
    return TrainConfig.from_dict(json.loads((run / "config.json").read_text())).flat()


@pytest.mark.slow
def test_compiled_maml_trains_and_resumes_from_the_command_line(runner, tmp_path):
    out = tmp_path / "run"
    options = [*TINY, "--algorithm", "maml", "--backbone", "mlp", "--meta-batch", "2", "--compiled"]
    result = runner.invoke(cli, ["train", *options, "--steps", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["maml"]["compiled"] is True
    result = runner.invoke(cli, ["train", "--resume", str(out), "--steps", "20"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["steps"] == 20
    refused = runner.invoke(cli, ["train", *TINY, "--compiled", "--out", str(tmp_path / "protonet")])
    assert refused.exit_code == 1 and "protonet has no setting 'compiled'; its own settings: distance" in refused.output


def test_bfloat16_maml_autocasts_its_query_passes_only(runner, tmp_path):
    from learntolearn.engine.model_file import load_run
    from learntolearn.nn.backbones import ConvNet

    out = tmp_path / "run"
    options = [*TINY, "--algorithm", "maml", "--backbone", "conv4", "--meta-batch", "2", "--precision", "bfloat16"]
    result = runner.invoke(cli, ["train", *options, "--steps", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    algorithm = load_run(out).algorithm
    assert algorithm.bfloat16_queries
    assert [m.compute_dtype for m in algorithm.modules() if isinstance(m, ConvNet)] == [None]
    refused = runner.invoke(
        cli, ["train", *TINY, "--algorithm", "reptile", "--precision", "bfloat16", "--out", str(tmp_path / "reptile")]
    )
    assert (
        refused.exit_code == 1
        and "precision bfloat16 is not supported by reptile (it supports float32)" in refused.output
    )


def test_missing_data_is_one_clear_line_not_a_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["train", "--data-root", str(tmp_path), "--no-download", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "Error: Omniglot archive not found: looked for" in result.output and "Traceback" not in result.output


def test_eval_of_a_folder_that_is_not_a_run(runner, tmp_path):
    result = runner.invoke(cli, ["eval", str(tmp_path)])
    assert result.exit_code == 1 and "is not a run folder" in result.output


def test_datasets_reports_missing_and_verified_archives(runner, tmp_path):
    result = runner.invoke(cli, ["datasets", "--data-root", str(tmp_path)])
    assert result.exit_code == 0 and "images_background.zip: missing at" in result.output


def test_datasets_verifies_the_real_archives(runner, data_root):
    result = runner.invoke(cli, ["datasets", "--data-root", str(data_root)])
    assert "images_evaluation.zip: present, verified (20 alphabets, 659 characters, 13180 images)" in result.output


def test_eval_on_the_lake_runs(runner, tmp_path, data_root):
    out = tmp_path / "run"
    assert runner.invoke(cli, ["train", *TINY, "--out", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["eval", str(out), "--lake-runs", "--data-root", str(data_root)])
    assert result.exit_code == 0, result.output
    assert (
        "Lake 20-way within-alphabet one-shot runs: accuracy" in result.output and "over 20 episodes" in result.output
    )


def test_presets_are_listed_with_their_deviations(runner):
    result = runner.invoke(cli, ["presets"])
    assert result.exit_code == 0
    assert "maml-omniglot-5w1s\n  follows: Finn et al. 2017" in result.output and "deviates:" in result.output


def test_presets_of_the_other_command_families_are_listed_and_named_with_their_command(runner, tmp_path):
    listed = runner.invoke(cli, ["presets"]).output
    assert "presets of `ltl rl train PRESET`: fomaml-rl-navigation," in listed and "oml-omniglot" in listed
    result = runner.invoke(cli, ["train", "--preset", "maml-rl-navigation", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "`ltl rl train maml-rl-navigation` trains it" in result.output
    result = runner.invoke(cli, ["train", "--preset", "no-such-preset", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "'no-such-preset' is not one of" in result.output
    assert not (tmp_path / "run").exists()


def test_a_preset_with_explicit_overrides(runner, tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--preset",
        "maml-omniglot-5w1s",
        "--dataset",
        "synthetic",
        "--split",
        "default",
        "--image-size",
        "16",
        "--steps",
        "2",
        "--val-every",
        "0",
        "--test-episodes",
        "4",
        "--no-compiled",
        "--out",
        str(out),
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    saved = flat_config(out)
    assert (saved["algorithm"], saved["backbone"], saved["inner_lr"], saved["meta_batch"]) == (
        "maml",
        "conv4-strided",
        0.4,
        32,
    )
    assert (saved["dataset"], saved["steps"]) == ("synthetic", 2)


def test_a_yaml_config_with_command_line_overrides(runner, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "dataset: synthetic\nsplit: default\nimage_size: 16\nlr: 3e-3\nsteps: 5\nval_every: 0\n"
        "test_episodes: 4\nqueries: 2\n"
    )
    result = runner.invoke(
        cli, ["train", "--preset", "protonet-omniglot-5w1s", "--config", str(config), "--steps", "3", "--dump-config"]
    )
    assert result.exit_code == 0, result.output
    dumped = TrainConfig.from_dict(yaml.safe_load(result.output)).flat()
    assert (
        dumped["lr"] == 0.003
        and dumped["steps"] == 3
        and dumped["train_ways"] == 60
        and dumped["dataset"] == "synthetic"
    )
    out = tmp_path / "run"
    assert runner.invoke(cli, ["train", "--config", str(config), "--out", str(out)]).exit_code == 0
    saved = flat_config(out)
    assert saved["lr"] == 0.003 and saved["steps"] == 5
    again = runner.invoke(cli, ["train", "--config", str(out / "config.json"), "--dump-config"])
    assert yaml.safe_load(again.output) == json.loads((out / "config.json").read_text())


@pytest.mark.parametrize(
    "text, message",
    [
        ("lerning_rate: 0.1\n", "unknown"),
        ("lr: 0.1\nwayz: 5\n", "did you mean 'ways'?"),
        ("ways: five\n", "episodes key 'ways' must be int, got 'five'"),
        ("algorithm: maml\nfirst_order: 1\n", "MAML key 'first_order' must be bool"),
        ("first_order: true\n", "protonet has no setting 'first_order'; its own settings: distance"),
        ("algorithm: maml\nprotonet: {distance: cosine}\n", "settings for protonet but its algorithm is maml"),
        ("episodes: {wayz: 5}\n", "did you mean 'ways'?"),
        ("- ways\n- 5\n", "must hold a mapping"),
        ("ways: [5\n", "is not valid YAML"),
    ],
)
def test_bad_config_files_are_rejected_naming_the_key(runner, tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = runner.invoke(cli, ["train", "--config", str(config), "--dump-config"])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_resume_refuses_options_it_would_ignore(runner, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(cli, ["train", *TINY, "--out", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["train", "--resume", str(out), "--lr", "0.1"])
    assert result.exit_code == 2 and "drop --lr" in result.output
    assert runner.invoke(cli, ["train", "--resume", str(tmp_path / "none")]).exit_code == 1


def test_tensorboard_events_are_written_when_tensorboard_is_installed(runner, tmp_path):
    pytest.importorskip(
        "tensorboard", reason="TensorBoard is an optional extra: pip install 'learntolearn[tensorboard]'"
    )
    out = tmp_path / "run"
    assert runner.invoke(cli, ["train", *TINY, "--out", str(out)]).exit_code == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"loss", "accuracy", "val_accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 21))


def test_plot_writes_learning_curves_and_accuracy_versus_shots(runner, tmp_path):
    pytest.importorskip("matplotlib", reason="plots are an optional extra: pip install 'learntolearn[plot]'")
    out = tmp_path / "run"
    assert runner.invoke(cli, ["train", *TINY, "--out", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["plot", str(out), "--shots", "5,1,2", "--episodes", "6"])
    assert result.exit_code == 0, result.output
    assert all(f"{k}-shot episodes" in result.output for k in (1, 2, 5)), "each point shows its progress"
    for name in ("learning_curves.png", "accuracy_vs_shots.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 300
    points = json.loads((out / "accuracy_vs_shots.json").read_text())
    assert [p["shots"] for p in points] == [1, 2, 5] and all(0 <= p["accuracy"] <= 1 for p in points)
    assert runner.invoke(cli, ["plot", str(out), "--shots", "one"]).exit_code == 2
    assert "is not a run folder" in runner.invoke(cli, ["plot", str(tmp_path), "--shots", ""]).output


def test_moving_average():
    from learntolearn.experiments.plots import moving_average

    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_the_mlp_backbone_takes_flattened_images(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        cli, ["train", *TINY, "--backbone", "mlp", "--algorithm", "maml", "--steps", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
