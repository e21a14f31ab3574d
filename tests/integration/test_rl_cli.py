"""`ltl rl`: RL² runs resume to exactly the run they would have been, refuse other settings in the same folder,
and are evaluated on the reference tables' own tasks."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from learntolearn.cli.main import cli
from learntolearn.errors import LtlError, UnknownNameError
from learntolearn.files import load_tensors
from learntolearn.rl.runs import preset, train_rl2, trials_of
from learntolearn.rl.tasks import BernoulliBandits, TabularMDPs


def small(iterations: int, **changes):
    """A bandit preset shrunk to seconds: a tiny GRU, eight tasks per iteration, checkpoints every two."""
    config = preset("rl2-bandits-k5-n10", iterations=iterations)
    return replace(config, **{"hidden": 16, "tasks_per_iteration": 8, "checkpoint_every": 2, **changes})


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = train_rl2(small(iterations=4), tmp_path / "straight", log=lambda _: None)
    train_rl2(small(iterations=2), tmp_path / "resumed", log=lambda _: None)
    lines = []
    resumed = train_rl2(small(iterations=4), tmp_path / "resumed", log=lines.append)
    assert lines[0] == "resuming at iteration 2"
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(LtlError, match="other settings .*hidden 16 -> 32"):
        train_rl2(small(iterations=4, hidden=32), tmp_path / "resumed")


def test_evaluation_tasks_are_the_reference_tables_tasks():
    bandits = trials_of(preset("rl2-bandits-k10-n100")).sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(bandits, BernoulliBandits(10).sample(5, torch.Generator().manual_seed(0)))
    mdps = trials_of(preset("rl2-mdp-n25")).sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(mdps.transitions, TabularMDPs().sample(5, torch.Generator().manual_seed(0)).transitions)
    with pytest.raises(UnknownNameError, match="unknown RL² preset"):
        preset("rl2-bandits-k3")


def test_the_commands_train_and_evaluate_a_run(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["rl", "train", "rl2-bandits-k5-n10", "--iterations", "1", "--run", str(run)])
    assert result.exit_code == 0, result.output
    assert "iteration 1: mean trial reward" in result.output
    assert load_tensors(run / "checkpoint.pt", "test")["iteration"] == 1
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "20"])
    assert result.exit_code == 0, result.output
    scored = json.loads((run / "evaluation.json").read_text())
    assert len(scored["totals"]) == 20 and "total reward per trial over 20 tasks" in result.output
