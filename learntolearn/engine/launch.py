"""``ltl train --nproc N``: start N training processes on this machine with torch's elastic launcher.

The same launcher as ``torchrun --standalone`` (c10d rendezvous on a free local port, no restarts):
a process that dies ends the job with an error naming its rank, and the last checkpoint, written
atomically by rank 0, stays intact for ``--resume``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from learntolearn.engine.config import TrainConfig
from learntolearn.engine.trainer import Trainer


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


def launch_processes(nproc: int, entry: Callable[..., Any], args: tuple[Any, ...], resume_hint: str) -> dict[int, Any]:
    """Run ``entry(*args)`` in ``nproc`` local processes joined by torch's elastic launcher; every rank's return
    value. A failed rank raises :class:`DistributedTrainingError` naming it, followed by ``resume_hint``.

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
    )
    try:
        return elastic_launch(launch, entry)(*args)
    except ChildFailedError as err:
        ranks = ", ".join(
            f"rank {rank} ({failure.message or f'exit code {failure.exitcode}'})"
            for rank, failure in sorted(err.failures.items())
        )
        raise DistributedTrainingError(f"distributed training failed: {ranks}. {resume_hint}") from err


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
    returned = launch_processes(
        nproc,
        _train_process,
        (config.to_dict(), str(run_dir), data_root, download, resume, timeout),
        f"The last checkpoint in {run_dir}/last.pt is intact; continue with `ltl train --resume {run_dir} --nproc {nproc}`",
    )
    return returned.get(0)
