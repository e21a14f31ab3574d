"""`ltl rl`: RL² and MAML-RL runs resume to exactly the run they would have been, refuse other settings in the same folder,
and are evaluated on the reference tables' own tasks."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import ltl

from learntolearn.cli.main import cli
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.errors import ConfigError, LtlError, StoppedError, TaskError, UnknownNameError
from learntolearn.files import load_tensors
from learntolearn.rl.maml_rl_runs import evaluate_policy, initial_policy, launch_maml_rl, train_maml_rl
from learntolearn.rl.maml_rl_runs import preset as maml_preset
from learntolearn.rl.runs import evaluate_rl2, preset, train_rl2, trials_of
from learntolearn.rl.tasks import BernoulliBandits, PointNavigation, TabularMDPs

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def sigterm_fails():
    """While a test runs, a SIGTERM that training does not catch fails it instead of ending the test process."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed on the main thread")

    def uncaught(number, frame):
        raise AssertionError("training did not catch SIGTERM")

    previous = signal.signal(signal.SIGTERM, uncaught)
    yield uncaught
    signal.signal(signal.SIGTERM, previous)


def signal_during(monkeypatch, module, name: str, call: int) -> None:
    """Send this process SIGTERM from inside the ``call``-th call of ``module.name`` (one training iteration)."""
    real, calls = getattr(module, name), []

    def signalling(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, signalling)


def test_sigterm_stops_an_rl2_run_with_a_checkpoint_that_resumes_to_the_uninterrupted_run(
    tmp_path, monkeypatch, sigterm_fails
):
    import learntolearn.rl.runs as runs

    straight = train_rl2(small(iterations=5), tmp_path / "straight", log=lambda _: None)
    signal_during(monkeypatch, runs, "ppo_update", call=3)
    stopped = tmp_path / "stopped"
    with pytest.raises(
        StoppedError,
        match=r"SIGTERM at iteration 3 of 5, .*`ltl rl train rl2-bandits-k5-n10 --run .*stopped --iterations 5`",
    ):
        train_rl2(small(iterations=5), stopped, log=lambda _: None)
    assert signal.getsignal(signal.SIGTERM) is sigterm_fails  # training put the handler back
    assert load_tensors(stopped / "checkpoint.pt", "checkpoint")["iteration"] == 3  # not a periodic one (every 2)
    monkeypatch.undo()
    resumed = train_rl2(small(iterations=5), stopped, log=lambda _: None)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("setting", "old", "new"), [("discount", 0.99, 1.0), ("entropy", 0.01, 0.05)])
def test_an_rl2_run_written_before_a_ppo_setting_resumes_at_its_old_value(tmp_path, setting, old, new):
    from learntolearn.files import save_tensors

    straight = train_rl2(small(iterations=4), tmp_path / "straight", log=lambda _: None)
    train_rl2(small(iterations=2), tmp_path / "old", log=lambda _: None)
    state = load_tensors(tmp_path / "old" / "checkpoint.pt", "test")
    assert state["config"].pop(setting) == old
    save_tensors(state, tmp_path / "old" / "checkpoint.pt")
    resumed = train_rl2(small(iterations=4), tmp_path / "old", log=lambda _: None)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    # and the setting reaches PPO: the same run with the other value ends elsewhere
    changed = train_rl2(small(iterations=4, **{setting: new}), tmp_path / "changed", log=lambda _: None)
    assert not torch.equal(changed.logits.weight, straight.logits.weight)
    with pytest.raises(LtlError, match=f"other settings .*{setting} {old} -> {new}"):
        train_rl2(small(iterations=6, **{setting: new}), tmp_path / "old")


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
    result = CliRunner().invoke(cli, ["rl", "train", "rl2-bandits-k5-n10", "--iterations", "3", "--run", str(run)])
    history = load_tensors(run / "checkpoint.pt", "test")["history"]
    assert len(history) == 3 and all(0 <= h <= 10 for h in history), "one mean trial reward per PPO iteration"
    result = CliRunner().invoke(cli, ["rl", "plot", str(run)])
    assert result.exit_code == 0 and (run / "training_curve.png").stat().st_size > 0, result.output
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "20"])
    assert result.exit_code == 0, result.output
    scored = json.loads((run / "evaluation.json").read_text())
    assert len(scored["totals"]) == 20 and "total reward per trial over 20 tasks" in result.output
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--episodes", "40"])
    assert result.exit_code != 0 and "--episodes, --step-budget and --goal set MAML-RL's evaluation" in result.output
    exported = tmp_path / "model.ltl"
    for command in (["eval"], ["train", "--resume"], ["train", "--out"], ["plot"], ["export", "--out", str(exported)]):
        # the image commands name the RL ones
        result = CliRunner().invoke(cli, [*command, str(run)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert (
            f"`ltl rl eval {run}`" in result.output
            and f"`ltl rl train rl2-bandits-k5-n10 --run {run}`" in result.output
        )
    assert not exported.exists() and not (run / "config.json").exists()
    for family in (["continual", "eval"], ["scan", "eval"], ["federated", "status"]):  # and so do the others
        result = CliRunner().invoke(cli, [*family, str(run)])
        assert result.exit_code == 1 and "is a `ltl rl` run of rl2-bandits-k5-n10" in result.output, result.output
    image_run = tmp_path / "image-run"  # an `ltl train` run folder: the RL commands neither read nor write it
    image_run.mkdir()
    (image_run / "config.json").write_text("{}")
    for command in (["eval", str(image_run)], ["train", "rl2-bandits-k5-n10", "--run", str(image_run)]):
        result = CliRunner().invoke(cli, ["rl", *command])
        assert result.exit_code == 1 and f"is an `ltl train` run: read it with `ltl eval {image_run}`" in result.output
    assert sorted(p.name for p in image_run.iterdir()) == ["config.json"]


def tiny_maml(iterations: int, **changes):
    """The navigation preset shrunk to a fraction of a second per iteration."""
    config = maml_preset("maml-rl-navigation", iterations=iterations)
    return replace(config, **{"hidden": (8,), "meta_batch": 2, "rollouts": 2, "checkpoint_every": 1, **changes})


def test_a_run_filling_a_step_budget_refuses_to_split_across_processes(tmp_path):
    with pytest.raises(ConfigError, match="drop --nproc"):
        launch_maml_rl(tiny_maml(1, fill_step_budget=True), tmp_path / "run", 2)


def test_a_resumed_maml_rl_run_equals_an_uninterrupted_one(tmp_path):
    straight = train_maml_rl(tiny_maml(3), tmp_path / "straight", log=lambda _: None)
    train_maml_rl(tiny_maml(1), tmp_path / "resumed", log=lambda _: None)
    lines = []
    resumed = train_maml_rl(tiny_maml(3), tmp_path / "resumed", log=lines.append)
    assert lines[0] == "resuming at iteration 1"
    assert all(torch.equal(straight[n], resumed[n]) for n in straight)
    with pytest.raises(LtlError, match=r"other settings .*inner_lr 0.1 -> 0.2"):
        train_maml_rl(tiny_maml(3, inner_lr=0.2), tmp_path / "resumed")
    with pytest.raises(UnknownNameError, match="unknown MAML-RL preset"):
        maml_preset("maml-rl-cheetah")


def test_sigterm_stops_a_maml_rl_run_with_a_checkpoint_that_resumes_to_the_uninterrupted_run(
    tmp_path, monkeypatch, sigterm_fails
):
    import learntolearn.rl.maml_rl_runs as maml_rl_runs

    straight = train_maml_rl(tiny_maml(3, checkpoint_every=3), tmp_path / "straight", log=lambda _: None)
    signal_during(monkeypatch, maml_rl_runs, "meta_iteration", call=2)
    stopped = tmp_path / "stopped"
    with pytest.raises(
        StoppedError,
        match=r"SIGTERM at iteration 2 of 3, .*`ltl rl train maml-rl-navigation --run .*stopped --iterations 3`",
    ):
        train_maml_rl(tiny_maml(3, checkpoint_every=3), stopped, log=lambda _: None)
    assert load_tensors(stopped / "checkpoint.pt", "checkpoint")["iteration"] == 2
    monkeypatch.undo()
    resumed = train_maml_rl(tiny_maml(3, checkpoint_every=3), stopped, log=lambda _: None)
    assert all(torch.equal(straight[n], resumed[n]) for n in straight)


def test_a_maml_rl_run_written_before_normalised_actions_counts_as_raw_actions(tmp_path):
    from learntolearn.files import save_tensors
    from learntolearn.rl.maml_rl_runs import evaluate_maml_rl

    old = tmp_path / "old"
    train_maml_rl(tiny_maml(1, normalised_actions=False), old, log=lambda _: None)
    state = load_tensors(old / "checkpoint.pt", "test")
    del state["config"]["normalised_actions"]
    save_tensors(state, old / "checkpoint.pt")
    with pytest.raises(LtlError, match="other settings .*normalised_actions False -> True"):
        train_maml_rl(tiny_maml(2), old)
    # its policy is scored in the raw-action environment it was trained in
    policy = dict(state["policy"])
    scored = evaluate_maml_rl(old, tasks=3, steps=0)["returns"]
    assert scored == evaluate_policy(policy, tiny_maml(1, normalised_actions=False), 3, 0)["returns"]
    assert scored != evaluate_policy(policy, tiny_maml(1), 3, 0)["returns"]


def test_ltl_rl_eval_scores_a_maml_rl_run_after_each_adaptation_step(tmp_path):
    run = tmp_path / "run"
    train_maml_rl(tiny_maml(1), run, log=lambda _: None)
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "2"])
    assert result.exit_code == 0, result.output
    scored = json.loads((run / "evaluation.json").read_text())
    assert len(scored["returns"]) == 3 and all(len(row) == 3 for row in scored["returns"])
    assert "average return after 2 adaptation steps" in result.output
    assert len(scored["ended_early"]) == 3 and all(0 <= share <= 1 for row in scored["ended_early"] for share in row)
    result = CliRunner().invoke(cli, ["rl", "plot", str(run)])
    assert result.exit_code == 0 and (run / "training_curve.png").stat().st_size > 1000, result.output
    # the same goals and noise for every run: evaluating twice gives the same numbers
    again = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "2"])
    assert json.loads((run / "evaluation.json").read_text())["returns"] == scored["returns"], again.output
    # --episodes: each step on that many episodes per task; the run's own count (2) is the default
    CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "2", "--episodes", "2"])
    assert json.loads((run / "evaluation.json").read_text())["returns"] == scored["returns"]
    more = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "2", "--episodes", "6"])
    assert more.exit_code == 0, more.output
    assert json.loads((run / "evaluation.json").read_text())["returns"] != scored["returns"]
    # --step-budget: the authors' sampler, as many episodes as the budget holds (at least its 300 // 100 slots)
    budget = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "1", "--step-budget", "300"])
    assert budget.exit_code == 0, budget.output
    counts = json.loads((run / "evaluation.json").read_text())["episodes"]
    assert len(counts) == 2 and all(n >= 3 for row in counts for n in row)
    both = CliRunner().invoke(cli, ["rl", "eval", str(run), "--episodes", "2", "--step-budget", "300"])
    assert both.exit_code != 0 and "a number of episodes or a step budget, not both" in both.output


@pytest.mark.slow  # two spawned processes: ~30 s
@pytest.mark.xdist_group("processes")
def test_two_processes_splitting_each_meta_batch_train_the_policy_one_process_trains(tmp_path):
    # float32 sums in another order differ by ~1e-7; CG's late iterations on a barely damped Fisher amplify that
    # (measured: the 10th differs by 1e-1 relative), so equivalence is checked on CG's well-conditioned first steps
    # a fixed number of episodes per task: the only sampling that splits (a filled step budget needs one process)
    config = tiny_maml(2, meta_batch=4, cg_iterations=4, fill_step_budget=False)
    alone = train_maml_rl(config, tmp_path / "alone", log=lambda _: None)
    launch_maml_rl(config, tmp_path / "split", nproc=2)
    state = load_tensors(tmp_path / "split" / "checkpoint.pt", "test")
    assert state["iteration"] == 2
    for name, value in alone.items():
        assert torch.allclose(state["policy"][name], value, atol=1e-4), name
        assert not torch.equal(value, initial_policy(config)[name])
    with pytest.raises(ConfigError, match="cannot be split over 8 processes"):
        launch_maml_rl(config, tmp_path / "too-many", nproc=8)


@pytest.mark.slow  # two spawned processes and ten TRPO iterations: ~40 s
@pytest.mark.xdist_group("processes")
def test_sigterm_to_a_two_process_maml_rl_launcher_stops_both_with_a_checkpoint_and_one_line(tmp_path):
    run = tmp_path / "run"
    job = subprocess.Popen(
        ltl("rl", "train", "fomaml-rl-navigation", "--run", str(run), "--nproc", "2", "--iterations", "100"),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline and not (run / "checkpoint.pt").exists():  # the first, at iteration 10
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 1
    iteration = load_tensors(run / "checkpoint.pt", "test")["iteration"]
    assert 10 <= iteration < 100
    assert stderr.strip().splitlines()[-1] == (
        f"Error: stopped by SIGTERM at iteration {iteration} of 100, saved in {run / 'checkpoint.pt'}; continue "
        f"with `ltl rl train fomaml-rl-navigation --run {run} --iterations 100 --nproc 2`"
    )
    assert "Traceback" not in stderr


class PoisonedNavigation(PointNavigation):
    """Navigation whose rewards turn NaN for task 1 from the ``after``-th simulated step on."""

    def __init__(self, after: int) -> None:
        super().__init__(normalised_actions=True)
        object.__setattr__(self, "calls", [0])
        object.__setattr__(self, "after", after)

    def step(self, goals, positions, actions, step=0):
        following, rewards = super().step(goals, positions, actions, step)
        self.calls[0] += 1
        if self.calls[0] > self.after:
            rewards = rewards.clone()
            rewards[1] = float("nan")
        return following, rewards


def test_a_nan_reward_names_the_task_and_step_and_leaves_the_last_checkpoint(tmp_path, monkeypatch):
    from learntolearn.rl import maml_rl_runs

    config = tiny_maml(5, fill_step_budget=False)  # samplings of exactly 100 steps, so the fault's step is known
    healthy = maml_rl_runs.task_family("navigation")
    poisoned = PoisonedNavigation(after=2 * 2 * 100 + 150)  # two iterations of two samplings of 100 steps, then NaN
    family = replace(healthy, simulator=lambda tasks, episodes: poisoned)
    monkeypatch.setattr(maml_rl_runs, "task_family", lambda *_: family)
    with pytest.raises(TaskError, match=r"a reward is not finite for task 1 \(task parameter \[.*\]\) at step 50"):
        train_maml_rl(config, tmp_path / "run", log=lambda _: None)
    state = load_tensors(tmp_path / "run" / "checkpoint.pt", "test")
    assert state["iteration"] == 2  # the last checkpoint, written before the fault, is intact
    monkeypatch.setattr(maml_rl_runs, "task_family", lambda *_: healthy)
    resumed = train_maml_rl(config, tmp_path / "run", log=lambda _: None)
    straight = train_maml_rl(config, tmp_path / "straight", log=lambda _: None)
    assert all(torch.equal(resumed[n], straight[n]) for n in straight)  # and resumes to the uninterrupted run


def test_the_mdp_table_scores_an_rl2_run_on_its_tasks_and_keeps_its_column_without_the_folder(tmp_path):
    run, out = tmp_path / "rl2-mdp-n10", tmp_path / "results"
    result = CliRunner().invoke(cli, ["rl", "train", "rl2-mdp-n10", "--iterations", "1", "--run", str(run)])
    assert result.exit_code == 0, result.output
    script = [sys.executable, str(ROOT / "scripts/reproduce/rl2_mdps.py"), "--tasks", "8", "--out", str(out)]
    subprocess.run([*script, "--rl2-run", str(run)], check=True, capture_output=True, cwd=ROOT)
    scored = json.loads((out / "rl2-mdps.json").read_text())
    evaluated = evaluate_rl2(run, tasks=8, seed=0)
    assert scored["totals"]["RL² (ours: GRU + PPO)"] == {"n=10": [round(v, 4) for v in evaluated["totals"]]}
    assert (
        "| RL² (ours: GRU + PPO) |" in (out / "rl2-mdps.md").read_text()
        and "| — |" in (out / "rl2-mdps.md").read_text()
    )
    partial = "Partial RL² runs, scored at the iteration they reached: n=10 (1 of 1,000)."
    assert partial in (out / "rl2-mdps.md").read_text()  # 1 iteration of the preset's 1,000
    difference = torch.tensor(scored["totals"]["RL² (ours: GRU + PPO)"]["n=10"], dtype=torch.float64) - torch.tensor(
        scored["totals"]["PSRL"]["n=10"], dtype=torch.float64
    )  # paired on the same MDPs, so the table can be checked against the stored totals
    paired = f"| PSRL | {difference.mean():.1f} ± {confidence_interval(difference):.1f} | — | — | — | — |"
    assert "RL² minus each learner" in (out / "rl2-mdps.md").read_text() and paired in (out / "rl2-mdps.md").read_text()
    history = load_tensors(run / "checkpoint.pt", "test")["history"]
    assert scored["rl2_runs"][0]["training_curve"] == [round(history[0], 1)]  # one iteration: one point
    assert (
        f"per 50 PPO iterations, from the runs' checkpoints): n=10: {round(history[0], 1):g}."
        in (out / "rl2-mdps.md").read_text()
    )
    subprocess.run(script, check=True, capture_output=True, cwd=ROOT)  # the run folder not given: kept
    again = json.loads((out / "rl2-mdps.json").read_text())
    assert again["totals"]["RL² (ours: GRU + PPO)"] == scored["totals"]["RL² (ours: GRU + PPO)"]
    assert again["rl2_runs"][0]["kept_from"] == scored["commit"]
    assert "Kept from earlier tables (run folders not given): n=10." in (out / "rl2-mdps.md").read_text()
    assert partial in (out / "rl2-mdps.md").read_text()


def test_the_maml_rl_table_scores_runs_on_their_family_and_draws_the_first_runs_curve(tmp_path):
    from learntolearn.rl.maml_rl_runs import evaluate_maml_rl

    run, out, figures = tmp_path / "maml-rl-navigation", tmp_path / "results", tmp_path / "figures"
    train_maml_rl(tiny_maml(2), run, log=lambda _: None)
    script = [sys.executable, str(ROOT / "scripts/reproduce/maml_rl.py"), "--tasks", "3", "--steps", "1"]
    paths = ["--out", str(out), "--figures", str(figures)]
    subprocess.run([*script, *paths, "--run", str(run)], check=True, capture_output=True, cwd=ROOT)
    record = json.loads((out / "maml-rl-navigation.json").read_text())
    assert record["returns"]["MAML (ours)"] == evaluate_maml_rl(run, tasks=3, steps=1)["returns"]
    assert set(record["returns"]) == {"MAML (ours)", "random initialisation"}
    assert record["runs"][0]["iteration"] == 2 and len(record["runs"][0]["history"]) == 2
    policy = load_tensors(run / "checkpoint.pt", "test")["policy"]
    assert record["runs"][0]["policy_std"] == policy["log_std"].exp().tolist()
    table = (out / "maml-rl-navigation.md").read_text()
    assert "maml-rl-navigation 2 of 2 TRPO iterations" in table and "| random initialisation |" in table
    # the share of episodes that reached the goal, per row and step, beside the returns
    assert set(record["ended_early"]) == set(record["returns"])
    assert all(len(steps) == 2 and len(steps[0]) == 3 for steps in record["ended_early"].values())
    assert "Episodes that reached the goal (% of each task's episodes" in table
    assert (figures / "maml-rl-navigation-curve.png").stat().st_size > 1000
    wrong = subprocess.run(
        [*script, *paths, "--family", "cheetah-dir", "--run", str(run)], capture_output=True, text=True
    )
    assert wrong.returncode != 0 and "trained maml-rl-navigation, not a cheetah-dir run" in wrong.stderr
    # more episodes per adaptation step: a table of its own beside the runs' own protocol, the curve not redrawn
    (figures / "maml-rl-navigation-curve.png").unlink()
    subprocess.run([*script, *paths, "--run", str(run), "--episodes", "4"], check=True, capture_output=True, cwd=ROOT)
    doubled = json.loads((out / "maml-rl-navigation-4-episodes.json").read_text())
    assert doubled["episodes"] == 4 and record["episodes"] == 2
    assert doubled["returns"]["MAML (ours)"] == evaluate_maml_rl(run, tasks=3, steps=1, episodes=4)["returns"]
    assert doubled["returns"]["MAML (ours)"] != record["returns"]["MAML (ours)"]
    table = (out / "maml-rl-navigation-4-episodes.md").read_text()
    assert "maml_rl.py --episodes 4`" in table and "policy-gradient step on 4 episodes" in table
    assert not (figures / "maml-rl-navigation-curve.png").exists()
    # the authors' sampler: a table of its own with the episodes each step collected
    budget = [*script, *paths, "--run", str(run), "--step-budget", "300"]
    subprocess.run(budget, check=True, capture_output=True, cwd=ROOT)
    sampled = json.loads((out / "maml-rl-navigation-step-budget-300.json").read_text())
    assert sampled["step_budget"] == 300 and sampled["episodes"] is None
    expected = evaluate_maml_rl(run, tasks=3, steps=1, step_budget=300)
    assert sampled["returns"]["MAML (ours)"] == expected["returns"]
    assert sampled["episodes_per_task"]["MAML (ours)"] == expected["episodes"]
    table = (out / "maml-rl-navigation-step-budget-300.md").read_text()
    assert "maml_rl.py --step-budget 300`" in table and "a budget of 300 steps collects" in table
    assert "Episodes per task in each step's sample" in table
    cheetah = subprocess.run([*budget, "--family", "cheetah-dir"], capture_output=True, text=True, cwd=ROOT)
    assert cheetah.returncode != 0 and "--step-budget is for navigation" in cheetah.stderr


def test_a_navigation_run_is_scored_on_one_goal_given_to_every_task(tmp_path):
    run = tmp_path / "run"
    train_maml_rl(tiny_maml(1), run, log=lambda _: None)
    # a point moves at most 0.1 per coordinate per step, so in 100 steps from the origin it stays within 10 of it
    # per coordinate: every step of an episode pays between 90 and 110 for a goal at (100, 0), at most 10 * 2**0.5
    # for one at the origin
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "0", "--goal", "100", "0"])
    assert result.exit_code == 0, result.output
    far = json.loads((run / "evaluation.json").read_text())["returns"][0]
    assert len(far) == 3 and all(-110 * 100 <= r <= -90 * 100 for r in far)
    CliRunner().invoke(cli, ["rl", "eval", str(run), "--tasks", "3", "--steps", "0", "--goal", "0", "0"])
    near = json.loads((run / "evaluation.json").read_text())["returns"][0]
    assert all(-(2**0.5) * 10 * 100 <= r <= 0 for r in near)
    result = CliRunner().invoke(cli, ["rl", "eval", str(run), "--goal", "nan", "0"])
    assert result.exit_code == 1 and "is not finite" in result.output
    with pytest.raises(ConfigError, match="a goal is a navigation task's parameter"):
        evaluate_policy({}, maml_preset("maml-rl-cheetah-dir"), goal=(1.0, 0.0))
