"""Data-parallel training with 2 gloo processes on loopback equals single-process training, resumes, and
fails loudly when a rank dies."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ltl

from learntolearn.data import EpisodeSampler, load_dataset
from learntolearn.engine.distributed import shard
from learntolearn.files import load_tensors

# processes of their own: run one after another on one worker when the tests run in parallel (pytest -n)
pytestmark = pytest.mark.xdist_group("processes")

SMALL = [
    "--dataset",
    "synthetic",
    "--split",
    "default",
    "--image-size",
    "16",
    "--ways",
    "5",
    "--queries",
    "3",
    "--algorithm",
    "maml",
    "--meta-batch",
    "5",
    "--val-every",
    "3",
    "--val-episodes",
    "10",
    "--test-episodes",
    "10",
    "--checkpoint-every",
    "2",
    "--outer-optimizer",
    "sgd",
    "--lr",
    "0.05",
    "--inner-lr",
    "0.1",
    "--seed",
    "4",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "learntolearn.cli.main",
        *args,
    ]


def training_rows(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("train_seconds", "train_cpu_seconds")} for row in rows]


def test_shards_cover_the_meta_batch_once_in_order():
    assert [list(shard(5, part, 2)) for part in range(2)] == [[0, 1, 2], [3, 4]]
    assert [len(shard(64, part, 3)) for part in range(3)] == [22, 21, 21]
    with pytest.raises(ValueError, match="raise meta_batch to at least 4"):
        shard(3, 0, 4)


def test_each_rank_gathers_its_share_of_the_same_episode_stream():
    data = load_dataset("synthetic", "default", "train", image_size=16)
    whole = EpisodeSampler(data, 5, 1, 3, seed=7).sample_many(5)
    shares = [EpisodeSampler(data, 5, 1, 3, seed=7).sample_many(5, shard(5, part, 2)) for part in range(2)]
    for mine, reference in zip(shares[0] + shares[1], whole):
        assert torch.equal(mine.query_x, reference.query_x) and torch.equal(mine.class_ids, reference.class_ids)


@pytest.mark.slow
def test_two_processes_train_and_resume_like_one(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    subprocess.run(ltl("train", *SMALL, "--steps", "6", "--out", str(single)), env=ENV, check=True, capture_output=True)
    first = subprocess.run(
        ltl("train", *SMALL, "--steps", "3", "--nproc", "2", "--out", str(multi)),
        env=ENV,
        check=False,
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert "test accuracy" in first.stdout
    resumed = subprocess.run(
        torchrun("train", "--resume", str(multi), "--steps", "6"), env=ENV, check=False, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((multi / "provenance.json").read_text())["processes"] == 2
    expected, got = training_rows(single), training_rows(multi)
    assert [sorted(row) for row in got] == [sorted(row) for row in expected]
    for a, b in zip(expected, got):
        assert a["step"] == b["step"]
        if "loss" in a:
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-4), (a, b)
        else:  # floating-point summation order may flip one of the 150 validation queries
            assert b["val_accuracy"] == pytest.approx(a["val_accuracy"], abs=1 / 150 + 1e-6), (a, b)
    weights_single, weights_multi = load_tensors(single / "last.pt")["model"], load_tensors(multi / "last.pt")["model"]
    for name, value in weights_single.items():
        torch.testing.assert_close(weights_multi[name], value, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_killed_rank_fails_the_job_loudly_and_leaves_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    job = subprocess.Popen(
        ltl("train", *SMALL, "--steps", "150", "--nproc", "2", "--dist-timeout", "60", "--out", str(run)),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "last.pt").exists():
        time.sleep(0.1)
    workers = [
        int(pid)
        for pid in subprocess.run(
            ["pgrep", "-P", str(job.pid), "-f", "spawn_main"], check=False, capture_output=True, text=True
        ).stdout.split()
    ]
    assert len(workers) == 2
    os.kill(max(workers), signal.SIGKILL)
    killed_at = time.time()
    _, stderr = job.communicate(timeout=90)
    assert job.returncode != 0
    assert time.time() - killed_at < 30
    assert "distributed training failed: rank 1" in stderr and "--resume" in stderr
    step = load_tensors(run / "last.pt")["step"]
    assert step >= 2
    subprocess.run(ltl("train", "--resume", str(run)), env=ENV, check=True, capture_output=True)
    assert load_tensors(run / "last.pt")["step"] == 150


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_rank_at_one_step_with_a_checkpoint_and_one_line(tmp_path):
    run = tmp_path / "run"
    args = [*SMALL[: SMALL.index("--checkpoint-every")], "--checkpoint-every", "1000", "--val-every", "1000"]
    job = subprocess.Popen(
        ltl("train", *args, "--steps", "400", "--nproc", "2", "--out", str(run)),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 1
    step = load_tensors(run / "last.pt")["step"]
    assert 0 < step < 400, "no periodic checkpoint before step 1000: this one was written on the signal"
    last_line = stderr.strip().splitlines()[-1]
    assert (
        last_line
        == f"Error: stopped by SIGTERM at step {step} of 400, saved in {run / 'last.pt'}; continue with "
        + (f"`ltl train --resume {run} --nproc 2`")
    )
    assert "Traceback" not in stderr and "death signal" not in stderr
    resumed = subprocess.run(
        ltl("train", "--resume", str(run), "--nproc", "2"), env=ENV, check=False, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"loss"' in line]
    assert steps == list(range(1, 401)), "resumed from the step both ranks stopped at, nothing lost or repeated"
