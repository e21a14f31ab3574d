"""`ltl federated run` in Flower's simulation engine on the Omniglot alphabets: 30 training clients, 10 a round,
checkpointed every round; a run continued from its checkpoint equals one run straight through."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from learntolearn.files import load_tensors

# processes of their own: run one after another on one worker when the tests run in parallel (pytest -n)
pytestmark = pytest.mark.xdist_group("processes")


def ltl_federated(*args: str, run: Path, data_root, succeeds: bool = True) -> str:
    """Run the command in a session of its own with its output in a file: Ray's worker processes outlive a killed
    parent and would hold a pipe open, so a timeout here kills the whole group instead of waiting on them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DISABLE_USAGE_STATS": "1"}
    command = [sys.executable, "-m", "learntolearn.cli.main", "federated", "run", *args, "--run", str(run)]
    command += ["--data-root", str(data_root)]
    log = run.parent / f"{run.name}-{len(list(run.parent.glob(run.name + '-*.log')))}.log"
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            process.wait(timeout=420)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert (process.returncode == 0) == succeeds, log.read_text()
    return log.read_text()


@pytest.mark.slow  # three simulations, each starting Ray and 30 virtual SuperNodes
def test_a_resumed_simulation_equals_one_run_straight_through(data_root, tmp_path):
    common = ["fedmeta-protonet-omniglot", "--clients-per-round", "10", "--threads", "1"]
    ltl_federated(*common, "--rounds", "3", run=tmp_path / "straight", data_root=data_root)
    ltl_federated(*common, "--rounds", "2", run=tmp_path / "resumed", data_root=data_root)
    output = ltl_federated(*common, "--rounds", "3", run=tmp_path / "resumed", data_root=data_root)
    assert "round 3/3" in output and "round 1/3" not in output  # continued, not restarted
    straight = load_tensors(tmp_path / "straight" / "checkpoint.pt", "test")
    resumed = load_tensors(tmp_path / "resumed" / "checkpoint.pt", "test")
    assert straight["round"] == resumed["round"] == 3
    for name, value in straight["params"].items():
        torch.testing.assert_close(resumed["params"][name], value, rtol=0, atol=0)
    history = straight["history"]
    assert [h["round"] for h in history] == [1, 2, 3]
    assert [h["clients"] for h in history] == [h["clients"] for h in resumed["history"]]
    assert all(len(h["clients"]) == 10 and h["failures"] == 0 for h in history)
    model_bytes = sum(v.numel() * 4 for v in straight["params"].values())  # float32 tensors, plus a small header each
    headers = 10 * 256 * len(straight["params"])
    assert all(10 * model_bytes < h["bytes_down"] == h["bytes_up"] < 10 * model_bytes + headers for h in history)
    final = history[-1]
    assert final["held_out_clients"]["episodes"] == 20 * 10 == len(final["held_out_scores"])  # 20 held-out alphabets
    assert final["training_clients"]["clients"] == 30


@pytest.mark.slow  # two one-round simulations
def test_flowers_central_dp_clips_every_update_and_adds_noise(data_root, tmp_path):
    from learntolearn.federated.runs import preset

    common = ["fedmeta-protonet-omniglot", "--rounds", "1", "--clients-per-round", "10", "--threads", "1"]
    start = preset("fedmeta-protonet-omniglot").initial_params()

    def moved(*dp: str) -> float:
        run = tmp_path / "-".join(dp)
        ltl_federated(*common, *dp, run=run, data_root=data_root)
        params = load_tensors(run / "checkpoint.pt", "test")["params"]
        return float(torch.cat([(params[n] - start[n]).flatten() for n in start]).norm())

    clipped = moved("--dp-clip", "0.001")
    assert 0 < clipped <= 0.001 * (1 + 1e-4)  # the average of updates each clipped to 0.001
    noisy = moved("--dp-clip", "0.001", "--dp-noise", "1.0")
    # noise of standard deviation 1.0 * 0.001 / 10 clients on each of ~19,000 weights: a norm near 0.014
    assert 0.005 < noisy < 0.05


@pytest.mark.slow  # two short simulations
def test_a_diverging_run_stops_keeps_its_last_good_model_and_refuses_to_resume(data_root, tmp_path):
    from learntolearn.federated.runs import preset

    args = ["fedavg-fashion", "--rounds", "3", "--clients-per-round", "2", "--lr", "1e30", "--threads", "1"]
    output = ltl_federated(*args, run=tmp_path / "hot", data_root=data_root, succeeds=False)
    assert "round 1 of hot diverged (the averaged model has non-finite weights)" in output
    state = load_tensors(tmp_path / "hot" / "checkpoint.pt", "test")
    assert state["diverged"]["round"] == 1 and state["round"] == 0 and state["history"] == []
    start = preset("fedavg-fashion").initial_params()
    for name, value in start.items():  # the last good model: the initial one
        torch.testing.assert_close(state["params"][name], value, rtol=0, atol=0)
    again = ltl_federated(*args, run=tmp_path / "hot", data_root=data_root, succeeds=False)
    assert "diverged at round 1" in again and "choose smaller ones" in again and "round 1/3" not in again
    status = subprocess.run(
        [sys.executable, "-m", "learntolearn.cli.main", "federated", "status", str(tmp_path / "hot")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        "0 rounds" in status.stdout
        and "diverged at round 1: the averaged model has non-finite weights" in status.stdout
    )
