"""One meta-training loop: seeded episodes, Adam, validation on fixed episodes, atomic resumable checkpoints.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per step and per validation; mirrored to
TensorBoard event files under ``tensorboard/`` when TensorBoard is installed),
``last.pt`` (everything needed to resume), ``best.pt`` (best validation accuracy), the fixed test
episodes and ``results.json``. A killed run continued with ``resume=True`` ends with the same
numbers as an uninterrupted one on the same seed and thread count.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from learntolearn.algorithms.base import Algorithm
from learntolearn.data import TEST_EPISODE_SEED
from learntolearn.engine.build import build_algorithm, build_optimizer
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.distributed import (
    DEFAULT_TIMEOUT_SECONDS,
    all_reduce_gradients,
    all_reduce_sum,
    all_reduce_tensor,
    average_buffers,
    broadcast_flag,
    init_from_environment,
    shard,
)
from learntolearn.engine.evaluate import Evaluation, evaluate
from learntolearn.engine.metrics import MetricsLog
from learntolearn.engine.provenance import provenance
from learntolearn.engine.sources import TaskSource, task_source
from learntolearn.engine.stopping import StopRequests, stop_agreed
from learntolearn.errors import ConfigError, ModelFileError, StoppedError
from learntolearn.files import FolderLock, load_tensors, save_tensors, write_json
from learntolearn.types import Task


def saved_graph_bytes(loss: Tensor) -> int:
    """Bytes of the tensors that the autograd graph behind ``loss`` holds for its backward, each storage once."""
    storages: dict[int, int] = {}
    seen: set = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for name in dir(node):
            if not (name.startswith("_saved_") or name == "saved_tensors"):
                continue
            value = getattr(node, name)
            for tensor in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(tensor, Tensor):
                    storage = tensor.untyped_storage()
                    storages[storage.data_ptr()] = storage.nbytes()
        stack.extend(following for following, _ in node.next_functions)
    return sum(storages.values())


def cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (compilers run by torch.compile)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def task_shape(task: Task) -> tuple:
    return tuple(tuple(t.shape) for t in (task.support_x, task.support_y, task.query_x, task.query_y))


class MetaBatchChunks:
    """How many tasks one backward takes: ``tasks_per_backward`` if set; else as many as keep the saved graph
    within ``graph_memory_mb`` (at least one), from the graph of the first task of each shape, measured once.
    Only for algorithms whose meta-loss is a mean over tasks; others, and a budget of 0, take the whole batch."""

    def __init__(self, tasks_per_backward: int = 0, graph_memory_mb: float = 128) -> None:
        self.tasks_per_backward, self.budget = tasks_per_backward, int(graph_memory_mb * 2**20)
        self.bytes_per_task: dict[tuple, int] = {}

    def size(self, algorithm: Algorithm, tasks: list[Task]) -> int | None:
        """Tasks per backward for this meta-batch; None until the first task's graph has been measured."""
        if self.tasks_per_backward:
            return self.tasks_per_backward
        if not algorithm.per_task_meta_loss or not self.budget:
            return len(tasks)
        measured = self.bytes_per_task.get(task_shape(tasks[0]))
        return None if measured is None else min(len(tasks), max(1, self.budget // max(measured, 1)))

    def measure(self, task: Task, loss: Tensor) -> None:
        self.bytes_per_task[task_shape(task)] = saved_graph_bytes(loss)


def accumulate_meta_gradient(
    algorithm: Algorithm,
    tasks: list[Task],
    chunks: int | MetaBatchChunks,
    total: int | None = None,
) -> tuple[float, float]:
    """Add the meta-gradient of the meta-loss over ``tasks`` to the parameters' ``.grad``, running
    backward on chunks of tasks (a fixed number, or sized by :class:`MetaBatchChunks`); returns the loss
    and accuracy.

    Each task weighs ``1 / total`` (default ``len(tasks)``: the mean); a process holding a share of a
    distributed meta-batch passes the whole meta-batch size, so the shares add up to the mean.

    Peak memory scales with the chunk, not the meta-batch. The gradient is the same as in one pass
    for algorithms whose meta-loss is a mean of per-task losses (the MAML family, Reptile); for the
    metric-based ones, BatchNorm then sees the chunk's statistics instead of the whole batch's.
    """
    sizer = chunks if isinstance(chunks, MetaBatchChunks) else MetaBatchChunks(chunks)
    loss, accuracy, start = 0.0, 0.0, 0
    while start < len(tasks):
        size = sizer.size(algorithm, tasks)
        chunk = tasks[start : start + (size or 1)]
        out = algorithm.meta_loss(chunk)
        if size is None:
            sizer.measure(chunk[0], out.loss)
        weight = len(chunk) / (total or len(tasks))
        if not math.isfinite(out.loss.item()):
            return out.loss.item(), out.accuracy
        (out.loss * weight).backward()
        loss += out.loss.item() * weight
        accuracy += out.accuracy * weight
        start += len(chunk)
    return loss, accuracy


class Trainer:
    """Meta-trains ``config.algorithm`` in ``run_dir``; ``run()`` returns the test :class:`Evaluation`.

    The tasks come from ``source`` (default: the episodes of ``config.episodes``' data set). Started by
    torchrun (``ltl train --nproc N``), it joins the process group and trains data-parallel
    (:mod:`learntolearn.engine.distributed`); only rank 0 writes to ``run_dir`` and tests.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike[str],
        *,
        data_root: str | None = None,
        download: bool = False,
        resume: bool = False,
        progress: bool = True,
        distributed_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        source: TaskSource | None = None,
    ) -> None:
        self.dist = init_from_environment(distributed_timeout)
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress and self.dist.is_main
        run = config.run
        if self.dist.enabled:
            shard(run.meta_batch, 0, self.dist.world_size)
        # only one process writes a run folder: a second run (or resume) of it is refused while this one lives
        self.lock = FolderLock(self.run_dir) if self.dist.is_main else None
        if (self.run_dir / "config.json").exists() and not resume:
            raise FileExistsError(
                f"{self.run_dir} already holds a run; pass resume=True to continue it or choose another folder"
            )
        if resume and not (self.run_dir / "config.json").exists():
            raise FileNotFoundError(f"{self.run_dir} is not a run folder (no config.json); nothing to resume")
        self.source = source or task_source(config, data_root=data_root, download=download)
        torch.manual_seed(run.seed)
        source = self.source
        self.algorithm = build_algorithm(config, source.input_shape, source.train_classes, regression=source.regression)
        self.optimizer, self.scheduler = build_optimizer(config, self.algorithm)
        self.sampler = self.source.sampler
        self.chunks = MetaBatchChunks(config.run.tasks_per_backward, config.run.graph_memory_mb)
        # best_val is the best validation's selection score: accuracy, or minus the MSE of regressions
        self.step, self.best_val, self.train_seconds, self.stale_validations = 0, float("-inf"), 0.0, 0
        self.train_cpu_seconds = 0.0
        self.best_key = "best_val_mse" if source.regression else "best_val_accuracy"
        if resume:
            self._restore()
        if self.dist.enabled:
            torch.distributed.barrier()  # every rank has read the run folder before rank 0 writes to it
        self.metrics = None
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "config.json", config.to_dict())
            if not resume:
                write_json(self.run_dir / "provenance.json", {**provenance(), "processes": self.dist.world_size})
                spec = {"input_shape": list(source.input_shape), "train_classes": source.train_classes}
                if source.regression:
                    spec["regression"] = True
                write_json(self.run_dir / "model_spec.json", spec)
            self.metrics = MetricsLog(self.run_dir, resume_step=self.step if resume else None)

    def _state(self) -> dict:
        return {
            "model": self.algorithm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": self.step,
            "best_val": self.best_val,
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
            "stale_validations": self.stale_validations,
            # the chunk sizes follow from these, so a resumed run backpropagates as an uninterrupted one
            "graph_bytes_per_task": [[list(map(list, key)), n] for key, n in self.chunks.bytes_per_task.items()],
            "config": self.config.to_dict(),
        }

    def _restore(self) -> None:
        saved = TrainConfig.from_dict(json.loads((self.run_dir / "config.json").read_text())).flat()
        given = self.config.flat()
        changed = sorted(k for k in given if k != "steps" and saved.get(k) != given[k])
        if changed:
            raise ConfigError(
                f"{self.run_dir}/config.json differs from the given config in {', '.join(changed)}; "
                f"only steps may change on resume"
            )
        if not (self.run_dir / "last.pt").exists():
            raise ModelFileError(f"{self.run_dir} has no last.pt checkpoint yet; start the run again without resume")
        state = load_tensors(self.run_dir / "last.pt")
        self.algorithm.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.best_val, self.train_seconds = state["step"], state["best_val"], state["train_seconds"]
        self.stale_validations = state.get("stale_validations", 0)
        self.train_cpu_seconds = state.get("train_cpu_seconds", 0.0)
        for key, n in state.get("graph_bytes_per_task", []):
            self.chunks.bytes_per_task[tuple(map(tuple, key))] = n
        if self.step > self.config.run.steps:
            raise ConfigError(f"{self.run_dir} already ran {self.step} steps; resume with steps >= {self.step}")

    def _log(self, record: dict) -> None:
        if self.metrics is not None:
            self.metrics.write(record)

    def train(self, cpu_budget_seconds: float | None = None) -> None:
        """Meta-train to ``run.steps``, or with ``cpu_budget_seconds`` until the first validation at or after that
        much training CPU time (checkpointed there; resuming a spent budget trains nothing). A first Ctrl-C or
        SIGTERM ends the current step, saves ``last.pt`` and raises :class:`StoppedError` (a second one stops at
        once, losing the steps since the last checkpoint); the ranks of a distributed job stop at the same step."""
        if cpu_budget_seconds is not None and self.dist.enabled:
            raise ConfigError("a CPU-time budget stops one process; its ranks would stop at different steps")
        with StopRequests(rank=self.dist.rank if self.dist.enabled else None) as stop_requests:
            self._train(stop_requests, cpu_budget_seconds)

    def budget_spent(self, cpu_budget_seconds: float | None) -> bool:
        """Whether training has used ``cpu_budget_seconds`` of CPU time and its last step was validated."""
        every = self.config.run.val_every if self.source.validation is not None else 0
        aligned = not every or self.step % every == 0
        return cpu_budget_seconds is not None and self.train_cpu_seconds >= cpu_budget_seconds and aligned

    def _train(self, stop_requests: StopRequests, cpu_budget_seconds: float | None = None) -> None:
        run = self.config.run
        self.algorithm.train()
        bar = tqdm(total=run.steps, initial=self.step, desc="meta-training", unit="step", disable=not self.progress)
        while self.step < run.steps and not self.budget_spent(cpu_budget_seconds):
            started, started_cpu = time.perf_counter(), cpu_seconds()
            self.algorithm.train()
            self.optimizer.zero_grad(set_to_none=True)
            share = shard(run.meta_batch, self.dist.rank, self.dist.world_size)
            tasks = self.sampler.sample_many(run.meta_batch, share)
            loss, accuracy = accumulate_meta_gradient(self.algorithm, tasks, self.chunks, run.meta_batch)
            if self.dist.enabled:
                all_reduce_gradients([p for p in self.algorithm.parameters() if p.requires_grad])
                loss, accuracy = all_reduce_sum(loss, accuracy)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the meta-loss became {loss} at step {self.step + 1}; lower the learning rate "
                    f"(lr={run.lr}) or resume from the last checkpoint in {self.run_dir}"
                )
            self.optimizer.step()
            self.scheduler.step()
            if self.dist.enabled:
                average_buffers(self.algorithm)
            self.step += 1
            self.train_seconds += time.perf_counter() - started
            self.train_cpu_seconds += cpu_seconds() - started_cpu
            self._log(
                {
                    "step": self.step,
                    "loss": round(loss, 6),
                    "accuracy": round(accuracy, 6),
                    "lr": self.scheduler.get_last_lr()[0],
                    "train_seconds": round(self.train_seconds, 3),
                    "train_cpu_seconds": round(self.train_cpu_seconds, 3),
                }
            )
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss:.3f}",
                acc=f"{accuracy:.3f}",
                tasks_per_s=f"{run.meta_batch * self.step / max(self.train_seconds, 1e-9):.1f}",
            )
            stop = False
            if self.source.validation is not None and run.val_every and self.step % run.val_every == 0:
                stop = self._validate() if self.dist.is_main else False
                stop = broadcast_flag(stop) if self.dist.enabled else stop
            spent = self.budget_spent(cpu_budget_seconds)
            asked = stop_agreed(stop_requests, all_reduce_tensor if self.dist.enabled else None)
            checkpoint = stop or spent or asked
            if self.dist.is_main and (checkpoint or self.step % run.checkpoint_every == 0 or self.step == run.steps):
                save_tensors(self._state(), self.run_dir / "last.pt")
            if stop:
                self._log({"step": self.step, "early_stop": True, self.best_key: self.best_value()})
                break
            if spent:
                self._log({"step": self.step, "cpu_budget_spent": round(self.train_cpu_seconds, 3)})
                break
            if asked:
                self._close(bar)
                raise StoppedError(
                    f"stopped by {stop_requests.signal or 'a signal to another process'} at step {self.step} of "
                    f"{run.steps}, saved in {self.run_dir / 'last.pt'}; continue with `ltl train --resume {self.run_dir}`"
                )
        self._close(bar)

    def _close(self, bar: tqdm) -> None:
        bar.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.lock is not None:  # test() takes it again for its own writes
            self.lock.release()
            self.lock = None

    def best_value(self) -> float:
        """The best validation accuracy, or the lowest validation MSE of regressions."""
        return -self.best_val if self.source.regression else self.best_val

    def _validate(self) -> bool:
        """Score the fixed validation episodes, keep the best model; True when patience has run out."""
        assert self.source.validation is not None
        result = evaluate(
            self.algorithm,
            self.source.validation(),
            progress=self.progress,
            total=self.source.validation_count,
            description="validating",
        )
        self._log({"step": self.step, f"val_{result.metric}": result.mean, "val_ci95": result.ci95})
        improved = result.selection_score > self.best_val
        if self.progress:
            tqdm.write(
                f"step {self.step}: validation {result}" + (" (best so far)" if improved else ""), file=sys.stderr
            )
        if improved:
            self.best_val, self.stale_validations = result.selection_score, 0
            save_tensors(
                {
                    "model": self.algorithm.state_dict(),
                    "step": self.step,
                    "val_accuracy": result.mean,
                    "config": self.config.to_dict(),
                },
                self.run_dir / "best.pt",
            )
        else:
            self.stale_validations += 1
        patience = self.config.run.patience
        return bool(patience) and self.stale_validations >= patience

    def test(self) -> Evaluation:
        """Evaluate the best-validation model (or the last one) on the fixed test episodes."""
        with FolderLock(self.run_dir):
            return self._test()

    def _test(self) -> Evaluation:
        best = self.run_dir / "best.pt"
        if best.exists():
            self.algorithm.load_state_dict(load_tensors(best)["model"])
        source = self.source
        result = evaluate(self.algorithm, source.test(), progress=self.progress, total=source.test_count)
        if source.save_test is not None:
            source.save_test(self.run_dir / "test_episodes.pt")
        summary = {
            f"test_{result.metric}": result.mean,
            "test_ci95": result.ci95,
            "episodes": source.test_count,
            "episode_seed": TEST_EPISODE_SEED,
            "steps": self.step,
            "train_seconds": round(self.train_seconds, 1),
            "train_cpu_seconds": round(self.train_cpu_seconds, 1),
            self.best_key: self.best_value() if best.exists() else None,
            "config": self.config.to_dict(),
            **provenance(),
        }
        write_json(self.run_dir / "results.json", summary)
        return result

    def run(self) -> Evaluation | None:
        """Train, then test on rank 0; other ranks of a distributed job return ``None``."""
        self.train()
        if self.dist.enabled:
            torch.distributed.destroy_process_group()
        return self.test() if self.dist.is_main else None
