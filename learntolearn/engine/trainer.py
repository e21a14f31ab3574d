"""One meta-training loop: seeded episodes, Adam, validation on fixed episodes, atomic resumable checkpoints.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per step and per validation; mirrored to
TensorBoard event files under ``tensorboard/`` when TensorBoard is installed),
``last.pt`` (everything needed to resume), ``best.pt`` (best validation accuracy), the fixed test
episodes and ``results.json``. A killed run continued with ``resume=True`` ends with the same
numbers as an uninterrupted one on the same seed and thread count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from learntolearn.algorithms.base import ALGORITHMS, Algorithm
from learntolearn.data import EpisodeSampler, EpisodeSet, load_dataset
from learntolearn.engine.checkpoint import atomic_save, load
from learntolearn.engine.config import MAML_FAMILY, TrainConfig
from learntolearn.engine.distributed import (
    DEFAULT_TIMEOUT_SECONDS,
    all_reduce_gradients,
    all_reduce_sum,
    average_buffers,
    broadcast_flag,
    init_from_environment,
    shard,
)
from learntolearn.engine.evaluate import Evaluation, evaluate
from learntolearn.engine.memory import malloc_setting, reuse_freed_memory
from learntolearn.engine.metrics import MetricsLog
from learntolearn.nn.backbones import BACKBONES, ConvNet

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
VAL_EPISODE_SEED = 1
TEST_EPISODE_SEED = 2


def build_algorithm(config: TrainConfig, input_shape: tuple[int, ...], train_classes: int) -> Algorithm:
    """The configured algorithm around a fresh backbone for inputs of shape ``(C, H, W)``."""
    factory = BACKBONES.get(config.backbone)
    flat = config.backbone == "mlp"
    backbone = factory(in_features=math.prod(input_shape)) if flat else factory(in_channels=input_shape[0])
    if config.precision == "bfloat16" and config.algorithm not in MAML_FAMILY:  # MAML's family: query passes only
        if not isinstance(backbone, ConvNet):
            raise ValueError(f"precision bfloat16 needs a convolutional backbone (conv4, conv4-maps, ...), not {config.backbone}")
        backbone.use_bfloat16()
    was_training = backbone.training
    with torch.no_grad():
        output_shape = tuple(backbone.eval()(torch.zeros(2, *input_shape)).shape[1:])
    backbone.train(was_training)
    return ALGORITHMS.get(config.algorithm).from_config(backbone, output_shape, config, train_classes)


def accumulate_meta_gradient(algorithm: Algorithm, tasks: list, tasks_per_backward: int,
                             total: int | None = None) -> tuple[float, float]:
    """Add the meta-gradient of the meta-loss over ``tasks`` to the parameters' ``.grad``, running
    backward on chunks of ``tasks_per_backward`` tasks; returns the loss and accuracy.

    Each task weighs ``1 / total`` (default ``len(tasks)``: the mean); a process holding a share of a
    distributed meta-batch passes the whole meta-batch size, so the shares add up to the mean.

    Peak memory scales with the chunk, not the meta-batch. The gradient is the same as in one pass
    for algorithms whose meta-loss is a mean of per-task losses (the MAML family, Reptile); for the
    metric-based ones, BatchNorm then sees the chunk's statistics instead of the whole batch's.
    """
    loss, accuracy = 0.0, 0.0
    for start in range(0, len(tasks), tasks_per_backward):
        chunk = tasks[start:start + tasks_per_backward]
        out = algorithm.meta_loss(chunk)
        weight = len(chunk) / (total or len(tasks))
        if not math.isfinite(out.loss.item()):
            return out.loss.item(), out.accuracy
        (out.loss * weight).backward()
        loss += out.loss.item() * weight
        accuracy += out.accuracy * weight
    return loss, accuracy


def git_commit(directory: Path) -> str:
    """HEAD of the repository holding ``directory``, with ``-dirty`` when tracked code differs from it;
    "unknown" outside a repository.

    Recorded outputs (``results/``, ``benchmarks/results/``) do not count as changes: a benchmark that
    appends its second record is still running the committed code.
    """
    outputs = [":(top)", ":(top,exclude)results", ":(top,exclude)benchmarks/results"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=directory).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *outputs],
                                 capture_output=True, text=True, check=True, cwd=directory).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def provenance() -> dict:
    """Commit of this code (see :func:`git_commit`), command, machine and library versions."""
    return {"commit": git_commit(Path(__file__).parent), "command": " ".join(sys.argv), "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "malloc": malloc_setting()}


class Trainer:
    """Meta-trains ``config.algorithm`` in ``run_dir``; ``run()`` returns the test :class:`Evaluation`.

    Started by torchrun (``ltl train --nproc N``), it joins the process group and trains data-parallel
    (:mod:`learntolearn.engine.distributed`); only rank 0 writes to ``run_dir`` and tests.
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike[str], *, data_root: str | None = None,
                 download: bool = False, resume: bool = False, progress: bool = True,
                 distributed_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        reuse_freed_memory()
        self.dist = init_from_environment(distributed_timeout)
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress and self.dist.is_main
        if self.dist.enabled:
            shard(config.meta_batch, 0, self.dist.world_size)
        if (self.run_dir / "config.json").exists() and not resume:
            raise FileExistsError(f"{self.run_dir} already holds a run; pass resume=True to continue it or choose another folder")
        if resume and not (self.run_dir / "config.json").exists():
            raise FileNotFoundError(f"{self.run_dir} is not a run folder (no config.json); nothing to resume")
        c = config
        options = {"data_root": data_root, "image_size": c.image_size, "download": download}
        self.train_data = load_dataset(c.dataset, c.split, c.train_subset, **options)
        self.val_data = load_dataset(c.dataset, c.split, c.val_subset, **options) if c.val_every else None
        self.test_data = load_dataset(c.dataset, c.split, c.test_subset, **options)
        torch.manual_seed(c.seed)
        self.algorithm = build_algorithm(c, self.train_data.image_shape, self.train_data.n_classes)
        self.optimizer = OPTIMIZERS[c.outer_optimizer](self.algorithm.parameters(), lr=c.lr)
        self.scheduler = (torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: max(0.0, 1 - step / c.steps))
                          if c.lr_schedule == "linear" else
                          torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=c.lr_halve_every, gamma=0.5))
        self.sampler = EpisodeSampler(self.train_data, c.train_ways or c.ways, c.train_shots or c.shots,
                                      c.train_queries or c.queries, seed=c.seed)
        self.val_episodes = (EpisodeSet.generate(self.val_data, c.ways, c.shots, c.queries, c.val_episodes, VAL_EPISODE_SEED)
                             if self.val_data else None)
        self.test_episodes = EpisodeSet.generate(self.test_data, c.ways, c.shots, c.queries, c.test_episodes, TEST_EPISODE_SEED)
        self.step, self.best_val, self.train_seconds, self.stale_validations = 0, -1.0, 0.0, 0
        if resume:
            self._restore()
        if self.dist.enabled:
            torch.distributed.barrier()  # every rank has read the run folder before rank 0 writes to it
        self.metrics = None
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))
            if not resume:
                record = {**provenance(), "processes": self.dist.world_size}
                (self.run_dir / "provenance.json").write_text(json.dumps(record, indent=2))
                spec = {"input_shape": list(self.train_data.image_shape), "train_classes": self.train_data.n_classes}
                (self.run_dir / "model_spec.json").write_text(json.dumps(spec))
            self.metrics = MetricsLog(self.run_dir, resume_step=self.step if resume else None)

    def _state(self) -> dict:
        return {"model": self.algorithm.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "torch_rng": torch.get_rng_state(), "step": self.step, "best_val": self.best_val,
                "train_seconds": self.train_seconds, "stale_validations": self.stale_validations,
                "config": dataclasses.asdict(self.config)}

    def _restore(self) -> None:
        saved = dataclasses.asdict(TrainConfig.from_dict(json.loads((self.run_dir / "config.json").read_text())))
        given = dataclasses.asdict(self.config)
        changed = sorted(k for k in given if k != "steps" and saved[k] != given[k])
        if changed:
            raise ValueError(f"{self.run_dir}/config.json differs from the given config in {', '.join(changed)}; "
                             f"only steps may change on resume")
        if not (self.run_dir / "last.pt").exists():
            raise FileNotFoundError(f"{self.run_dir} has no last.pt checkpoint yet; start the run again without resume")
        state = load(self.run_dir / "last.pt")
        self.algorithm.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.best_val, self.train_seconds = state["step"], state["best_val"], state["train_seconds"]
        self.stale_validations = state.get("stale_validations", 0)
        if self.step > self.config.steps:
            raise ValueError(f"{self.run_dir} already ran {self.step} steps; resume with steps >= {self.step}")

    def _log(self, record: dict) -> None:
        if self.metrics is not None:
            self.metrics.write(record)

    def train(self) -> None:
        c = self.config
        self.algorithm.train()
        bar = tqdm(total=c.steps, initial=self.step, desc="meta-training", unit="step", disable=not self.progress)
        while self.step < c.steps:
            started = time.perf_counter()
            self.algorithm.train()
            self.optimizer.zero_grad(set_to_none=True)
            share = shard(c.meta_batch, self.dist.rank, self.dist.world_size)
            tasks = self.sampler.sample_many(c.meta_batch, share)
            loss, accuracy = accumulate_meta_gradient(self.algorithm, tasks, c.tasks_per_backward or len(tasks), c.meta_batch)
            if self.dist.enabled:
                all_reduce_gradients([p for p in self.algorithm.parameters() if p.requires_grad])
                loss, accuracy = all_reduce_sum(loss, accuracy)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the meta-loss became {loss} at step {self.step + 1}; lower the learning rate "
                    f"(lr={c.lr}) or resume from the last checkpoint in {self.run_dir}"
                )
            self.optimizer.step()
            self.scheduler.step()
            if self.dist.enabled:
                average_buffers(self.algorithm)
            self.step += 1
            self.train_seconds += time.perf_counter() - started
            self._log({"step": self.step, "loss": round(loss, 6), "accuracy": round(accuracy, 6),
                       "lr": self.scheduler.get_last_lr()[0], "train_seconds": round(self.train_seconds, 3)})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}",
                            tasks_per_s=f"{c.meta_batch * self.step / max(self.train_seconds, 1e-9):.1f}")
            stop = False
            if self.val_episodes is not None and c.val_every and self.step % c.val_every == 0:
                stop = self._validate() if self.dist.is_main else False
                stop = broadcast_flag(stop) if self.dist.enabled else stop
            if self.dist.is_main and (stop or self.step % c.checkpoint_every == 0 or self.step == c.steps):
                atomic_save(self._state(), self.run_dir / "last.pt")
            if stop:
                self._log({"step": self.step, "early_stop": True, "best_val_accuracy": self.best_val})
                break
        bar.close()
        if self.metrics is not None:
            self.metrics.close()

    def _validate(self) -> bool:
        """Score the fixed validation episodes, keep the best model; True when patience has run out."""
        result = evaluate(self.algorithm, self.val_episodes.tasks(self.val_data), progress=False)
        self._log({"step": self.step, "val_accuracy": result.mean, "val_ci95": result.ci95})
        if result.mean > self.best_val:
            self.best_val, self.stale_validations = result.mean, 0
            atomic_save({"model": self.algorithm.state_dict(), "step": self.step, "val_accuracy": result.mean,
                         "config": dataclasses.asdict(self.config)}, self.run_dir / "best.pt")
        else:
            self.stale_validations += 1
        return bool(self.config.patience) and self.stale_validations >= self.config.patience

    def test(self) -> Evaluation:
        """Evaluate the best-validation model (or the last one) on the fixed test episodes."""
        best = self.run_dir / "best.pt"
        if best.exists():
            self.algorithm.load_state_dict(load(best)["model"])
        result = evaluate(self.algorithm, self.test_episodes.tasks(self.test_data), progress=self.progress,
                          total=len(self.test_episodes))
        self.test_episodes.save(self.run_dir / "test_episodes.pt")
        summary = {"test_accuracy": result.mean, "test_ci95": result.ci95, "episodes": len(self.test_episodes),
                   "episode_seed": TEST_EPISODE_SEED, "steps": self.step, "train_seconds": round(self.train_seconds, 1),
                   "best_val_accuracy": self.best_val if best.exists() else None,
                   "config": dataclasses.asdict(self.config), **provenance()}
        (self.run_dir / "results.json").write_text(json.dumps(summary, indent=2))
        return result

    def run(self) -> Evaluation | None:
        """Train, then test on rank 0; other ranks of a distributed job return ``None``."""
        self.train()
        if self.dist.enabled:
            torch.distributed.destroy_process_group()
        return self.test() if self.dist.is_main else None
