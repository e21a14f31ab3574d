"""A run killed with SIGKILL mid-training resumes from its last atomic checkpoint and ends as if never stopped."""

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
