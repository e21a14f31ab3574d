"""``ltl train --nproc N``: start N training processes on this machine with torch's elastic launcher.

The same launcher as ``torchrun --standalone`` (c10d rendezvous on a free local port, no restarts):
a process that dies ends the job with an error naming its rank, and the last checkpoint, written
atomically by rank 0, stays intact for ``--resume``. Ctrl-C or SIGTERM to the launcher is passed to every
process, which stop after the same step with a checkpoint (a process still running after
``SHUTDOWN_SECONDS`` is killed), and the launcher ends with one line saying where to continue.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from learntolearn.engine.config import TrainConfig
from learntolearn.engine.trainer import Trainer
from learntolearn.errors import StoppedError
from learntolearn.files import load_tensors

# how long the processes of a stopped job have to finish their step and write a checkpoint
SHUTDOWN_SECONDS = 300
ELASTIC_LOGS = ("torch.distributed.elastic", "torch.distributed.launcher")


class DistributedTrainingError(RuntimeError):
    """A training process failed; the message names the rank and how to resume."""


def _train_process(
    config: dict, run_dir: str, data_root: str | None, download: bool, resume: bool, timeout: float
) -> str | None:
    """One rank's work; rank 0 returns the test result as text."""
    trainer = Trainer(
        TrainConfig.from_dict(config),
        run_dir,
        data_root=data_root,
        download=download,
        resume=resume,
        distributed_timeout=timeout,
    )
    result = trainer.run()
    return None if result is None else str(result)


def launch_processes(
    nproc: int,
    entry: Callable[..., Any],
    args: tuple[Any, ...],
    resume_hint: str,
    stopped: Callable[[str], str],
) -> dict[int, Any]:
    """Run ``entry(*args)`` in ``nproc`` local processes joined by torch's elastic launcher; every rank's return
    value. A failed rank raises :class:`DistributedTrainingError` naming it, followed by ``resume_hint``; a signal
    that stopped the job raises :class:`StoppedError` with ``stopped(signal name)``.

    Each process gets ``cpu_count // nproc`` threads unless ``OMP_NUM_THREADS`` is set.
    """
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    os.environ["OMP_NUM_THREADS"] = threads
    launch = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
        monitor_interval=0.5,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    # the launcher's warnings on a signal repeat what the stopped message says
    elastic_logs = [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith(ELASTIC_LOGS)
    ]
    levels = [log.level for log in elastic_logs]
    for log in elastic_logs:
        log.setLevel(logging.ERROR)
    try:
        return elastic_launch(launch, entry)(*args)
    except ChildFailedError as err:
        ranks = ", ".join(
            f"rank {rank} ({failure.message or f'exit code {failure.exitcode}'})"
            for rank, failure in sorted(err.failures.items())
        )
        raise DistributedTrainingError(f"distributed training failed: {ranks}. {resume_hint}") from err
    except SignalException as err:
        raise StoppedError(stopped(err.sigval.name)) from None
    finally:
        for log, level in zip(elastic_logs, levels):
            log.setLevel(level)


def launch_training(
    nproc: int,
    config: TrainConfig,
    run_dir: str,
    *,
    data_root: str | None,
    download: bool,
    resume: bool,
    timeout: float,
) -> str | None:
    """Train with ``nproc`` local processes; returns rank 0's test result, raises :class:`DistributedTrainingError` if a rank fails."""
    resume_command = f"ltl train --resume {run_dir} --nproc {nproc}"

    def stopped(signal_name: str) -> str:
        last = Path(run_dir, "last.pt")
        if not last.exists():
            return f"stopped by {signal_name} before the first checkpoint; nothing in {run_dir} to continue from"
        step = load_tensors(last)["step"]
        return (
            f"stopped by {signal_name} at step {step} of {config.run.steps}, saved in {last}; "
            f"continue with `{resume_command}`"
        )

    returned = launch_processes(
        nproc,
        _train_process,
        (config.to_dict(), str(run_dir), data_root, download, resume, timeout),
        f"The last checkpoint in {run_dir}/last.pt is intact; continue with `{resume_command}`",
        stopped,
    )
    return returned.get(0)
