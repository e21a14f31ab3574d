"""The run config: groups, each algorithm's own settings, strict keys, and format-1 files converted."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from learntolearn.algorithms import ALGORITHMS
from learntolearn.cli.main import cli
from learntolearn.engine.config import EpisodesConfig, RunConfig, TrainConfig
from learntolearn.engine.model_file import load_model_file, load_run
from learntolearn.errors import ConfigError, UnknownNameError

FORMAT1 = Path(__file__).resolve().parents[1] / "fixtures" / "format1"


def test_a_config_is_three_groups_and_the_algorithms_own_settings():
    config = TrainConfig.create(algorithm="maml", ways=20, steps=3, inner_lr=0.1, compiled=True)
    assert (config.episodes.ways, config.run.steps, config.settings.inner_lr, config.settings.compiled) == (
        20,
        3,
        0.1,
        True,
    )
    saved = config.to_dict()
    assert set(saved) == {"format_version", "algorithm", "backbone", "episodes", "run", "maml"}
    assert TrainConfig.from_dict(saved) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(saved))) == config


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_algorithm_owns_a_frozen_config_whose_keys_collide_with_no_group(name):
    settings = ALGORITHMS.get(name).Config
    assert dataclasses.is_dataclass(settings) and settings.__dataclass_params__.frozen
    assert not set(settings.keys()) & {*EpisodesConfig.keys(), *RunConfig.keys(), "algorithm", "backbone"}
    for f in dataclasses.fields(settings):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help text for its command-line option"
    assert TrainConfig.create(algorithm=name).settings == settings()


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_setting_of_every_algorithm_is_a_train_option(name):
    help_text = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for key in [*ALGORITHMS.get(name).Config.keys(), *EpisodesConfig.keys(), *RunConfig.keys()]:
        assert f"--{key.replace('_', '-')}" in help_text


def test_keys_an_algorithm_does_not_have_are_errors_naming_the_keys_it_has():
    with pytest.raises(UnknownNameError, match="protonet has no setting 'inner_lr'; its own settings: distance"):
        TrainConfig.create(algorithm="protonet", inner_lr=0.1)
    with pytest.raises(UnknownNameError, match="unknown MAML key.*'distance'.*valid keys: inner_lr"):
        TrainConfig.from_dict({"algorithm": "maml", "maml": {"distance": "cosine"}})
    with pytest.raises(UnknownNameError, match="'shot' \\(did you mean 'shots'\\?\\)"):
        TrainConfig.create(shot=1)
    with pytest.raises(ConfigError, match="settings for protonet but its algorithm is maml"):
        TrainConfig.from_dict({"algorithm": "maml", "protonet": {"distance": "cosine"}})


def test_protonet_and_matching_each_read_their_own_distance():
    assert TrainConfig.create(algorithm="protonet").settings.distance == "euclidean"
    assert TrainConfig.create(algorithm="matching").settings.distance == "cosine"
    from learntolearn.engine.build import build_algorithm

    model = build_algorithm(TrainConfig.create(algorithm="protonet", backbone="mlp", distance="cosine"), (1, 4, 4), 10)
    assert model.distance == "cosine"


def test_capabilities_are_class_attributes_not_name_lists():
    with pytest.raises(ConfigError, match="precision bfloat16 is not supported by reptile"):
        TrainConfig.create(algorithm="reptile", precision="bfloat16")
    with pytest.raises(ConfigError, match="precision bfloat16 is not supported by finetune"):
        TrainConfig.create(algorithm="finetune", precision="bfloat16")
    assert TrainConfig.create(algorithm="maml", precision="bfloat16").run.precision == "bfloat16"
    with pytest.raises(ConfigError, match="maml has one output per way, so train_ways \\(20\\) must equal ways"):
        TrainConfig.create(algorithm="maml", train_ways=20)
    assert TrainConfig.create(algorithm="baseline", train_ways=20).episodes.train_ways == 20, "its head is per task"
    with pytest.raises(ConfigError, match="choose batched or compiled"):
        TrainConfig.create(algorithm="maml", batched=True, compiled=True)
    with pytest.raises(ConfigError, match="input gate starts at inner_lr, a probability"):
        TrainConfig.create(algorithm="metalstm", inner_lr=1.5)
    with pytest.raises(ConfigError, match="'inner_optimizer': unknown 'rmsprop'; valid: sgd, adam"):
        TrainConfig.create(algorithm="reptile", inner_optimizer="rmsprop")


@pytest.mark.parametrize("path", sorted((FORMAT1 / "configs").glob("*.json")), ids=lambda p: p.stem)
def test_format1_configs_convert_keeping_exactly_what_their_algorithm_read(path):
    old = json.loads(path.read_text())
    config = TrainConfig.from_dict(old)
    flat = config.flat()
    ignored = {"distance"} if old["algorithm"] == "protonet" else set()  # read by Matching Networks only
    for key, value in old.items():
        if key in flat and key not in ignored:
            assert flat[key] == value, key
    assert TrainConfig.from_dict(config.to_dict()) == config
    if old["algorithm"] == "protonet":
        assert config.settings.distance == "euclidean", "format 1 never passed distance to ProtoNets"


def test_a_format1_run_folder_evaluates_resumes_and_exports(tmp_path):
    run = tmp_path / "run-maml"
    shutil.copytree(FORMAT1 / "run-maml", run)
    old_weights = torch.load(run / "best.pt", weights_only=True)["model"]
    model = load_run(run)
    assert model.config.algorithm == "maml" and model.config.settings.inner_lr == 0.1
    for name, tensor in model.algorithm.state_dict().items():
        assert torch.equal(tensor, old_weights[name])
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", str(run), "--episodes", "4"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", "--resume", str(run), "--steps", "6"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["format_version"] == 2
    assert json.loads((run / "results.json").read_text())["steps"] == 6
    result = runner.invoke(cli, ["export", str(run), "--out", str(tmp_path / "m.ltl")])
    assert result.exit_code == 0, result.output
    assert torch.load(tmp_path / "m.ltl", weights_only=True)["format_version"] == 2


@pytest.mark.parametrize("name", ["maml", "protonet"])
def test_format1_model_files_load_with_their_weights(name):
    path = FORMAT1 / f"{name}.ltl"
    saved = torch.load(path, weights_only=True)
    model = load_model_file(path)
    assert saved["format_version"] == 1 and model.config.algorithm == name
    for key, tensor in model.algorithm.state_dict().items():
        assert torch.equal(tensor, saved["state_dict"][key])


def test_an_unknown_format_is_refused_naming_it():
    with pytest.raises(ConfigError, match="config format 7 is not one this learntolearn reads"):
        TrainConfig.from_dict({"format_version": 7, "algorithm": "maml"})
