"""A run killed with SIGKILL mid-training resumes from its last atomic checkpoint and ends as if never stopped."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from helpers import ltl

from learntolearn.files import load_tensors

# processes of their own: run one after another on one worker when the tests run in parallel (pytest -n)
pytestmark = pytest.mark.xdist_group("processes")

ARGS = [
    "--dataset",
    "synthetic",
    "--split",
    "default",
    "--image-size",
    "16",
    "--queries",
    "3",
    "--steps",
    "300",
    "--val-every",
    "0",
    "--test-episodes",
    "10",
    "--checkpoint-every",
    "5",
    "--seed",
    "3",
]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        ltl("train", *ARGS, "--out", str(killed)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "last.pt").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_at = load_tensors(killed / "last.pt")["step"]
    assert 0 < stopped_at < 300, "the run must be killed part-way"
    subprocess.run(ltl("train", "--resume", str(killed)), env=env, check=True, capture_output=True)
    whole = tmp_path / "whole"
    subprocess.run(ltl("train", *ARGS, "--out", str(whole)), env=env, check=True, capture_output=True)
    a, b = load_tensors(killed / "last.pt"), load_tensors(whole / "last.pt")
    assert a["step"] == b["step"] == 300
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_sigterm_stops_after_the_current_step_with_a_checkpoint_to_resume_from(tmp_path):
    """Ctrl-C or SIGTERM no longer loses the steps since the last periodic checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    stopped = tmp_path / "stopped"
    args = [*ARGS[: ARGS.index("--checkpoint-every")], "--checkpoint-every", "1000", "--seed", "3"]
    process = subprocess.Popen(
        ltl("train", *args, "--out", str(stopped)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    metrics = stopped / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert not (stopped / "results.json").exists(), "a stopped run is not tested"
    step = load_tensors(stopped / "last.pt")["step"]
    assert 0 < step < 300, "no periodic checkpoint before step 1000: this one was written on the signal"
    assert f"stopped by SIGTERM at step {step} of 300" in stderr and f"ltl train --resume {stopped}" in stderr
    subprocess.run(ltl("train", "--resume", str(stopped)), env=env, check=True, capture_output=True)
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"loss"' in line]
    assert steps == list(range(1, 301)), "resumed from the stopped step, nothing lost or repeated"
