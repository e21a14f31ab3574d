"""Data-parallel meta-training over processes with ``torch.distributed`` (gloo).

Every rank draws the *same* stream of episode plans (same seed) and keeps a contiguous share of each
meta-batch; only its own episodes are gathered into tensors. Each rank backpropagates its share of
the mean meta-loss (weighted by ``share / meta_batch``), and one all-reduce sums the meta-gradients,
so the update equals single-process training on the same seed and meta-batch up to floating-point
summation order (for algorithms whose meta-loss is a mean of per-task losses: the MAML family,
Reptile; metric-based algorithms normalise BatchNorm over the rank's share, as ``tasks_per_backward``
does). Rank 0 validates, logs and writes checkpoints; a killed rank ends the job (the launcher stops
the others, and every collective has a timeout).

Run through ``ltl train --nproc N`` (one machine) or ``torchrun ... -m learntolearn.cli.main train``
(several machines; see docs/distributed.md).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from learntolearn.errors import ConfigError

DEFAULT_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job: ``rank`` of ``world_size`` (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True inside a worker started by ``torchrun`` / ``ltl train --nproc`` with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_environment(timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> Distributed:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...).

    The trainer keeps models and episodes on the CPU, so the backend is gloo (docs/distributed.md
    says what GPU ranks need). A collective that waits longer than ``timeout_seconds`` (a dead or
    stuck peer) raises instead of hanging.
    """
    if not launched_by_torchrun():
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_seconds))
    return Distributed(dist.get_rank(), dist.get_world_size())


def shard(count: int, part: int, parts: int) -> range:
    """Indices of the ``part``-th of ``parts`` contiguous, near-equal shares of ``range(count)``."""
    if count < parts:
        raise ConfigError(
            f"a meta-batch of {count} tasks cannot be split over {parts} processes; "
            f"raise meta_batch to at least {parts} or use fewer processes"
        )
    base, extra = divmod(count, parts)
    start = part * base + min(part, extra)
    return range(start, start + base + (part < extra))


def all_reduce_gradients(parameters: list[nn.Parameter]) -> None:
    """Sum ``.grad`` over ranks in one flat all-reduce (a missing gradient counts as zeros)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    for p, reduced in zip(parameters, flat.split([p.numel() for p in parameters])):
        p.grad = reduced.view_as(p).clone()


def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) so every replica stays identical."""
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.reshape(-1) for b in buffers])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for b, reduced in zip(buffers, flat.split([b.numel() for b in buffers])):
        b.copy_(reduced.view_as(b))


def all_reduce_sum(*values: float) -> list[float]:
    """Sum a few scalars over ranks."""
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_tensor(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over ranks (a new tensor)."""
    total = value.detach().clone()
    dist.all_reduce(total)
    return total


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank."""
    tensor = torch.tensor([int(flag)])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
