"""OML and ANML runs: presets, resumable meta-training on Omniglot's background characters in a locked run
folder, and the supervised pretraining the fine-tuning baselines start from.

Background characters ``0 .. meta_train_classes - 1`` are meta-trained on; the rest of the background set is
the meta-validation set on which the online learning rate is chosen; the evaluation set is never seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.algorithms.inner import Params
from learntolearn.continual import anml, oml
from learntolearn.continual.layers import reset_output_row, with_fresh_output
from learntolearn.continual.stream import OnlineLearner, choose_rate, continual_curves, deal
from learntolearn.continual.trajectory import remembering_loss
from learntolearn.data.omniglot import load_omniglot
from learntolearn.errors import LtlError, UnknownNameError
from learntolearn.files import FolderLock, load_tensors, matching_checkpoint, save_tensors


@dataclass(frozen=True)
class ContinualRunConfig:
    name: str
    algorithm: str  # "oml" or "anml"
    channels: int = 64
    hidden: int = 256  # OML's prediction network
    nm_channels: int = 28  # ANML's neuromodulatory network
    classes: int = 1000
    inner_lr: float = 0.03
    meta_lr: float = 1e-4
    trajectory: int = 20
    remember: int = 64
    first_order: bool = False
    meta_train_classes: int = 864
    steps: int = 10_000
    seed: int = 0
    checkpoint_every: int = 100


PRESETS = {
    "oml-omniglot": ContinualRunConfig("oml-omniglot", "oml"),
    "anml-omniglot": ContinualRunConfig("anml-omniglot", "anml", meta_lr=1e-3),
}


def preset(name: str, **changes: Any) -> ContinualRunConfig:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown continual preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Network:
    """What an algorithm's network needs: its logits, initial parameters, output layer and fast parameters."""

    logits: Callable[[Params, Tensor], Tensor]
    params: Params
    output: str
    meta_training_fast: tuple[str, ...]
    meta_test_fast: tuple[str, ...]


def omniglot_classes(subset: str, data_root: str | None) -> Tensor:
    """Omniglot's official ``background`` or ``evaluation`` characters at 28x28, ``[classes, 20, 1, 28, 28]``."""
    return omniglot_characters(subset, data_root)[0]


def omniglot_characters(subset: str, data_root: str | None) -> tuple[Tensor, Tensor]:
    """:func:`omniglot_classes` and each character's alphabet (an index into the subset's sorted alphabets)."""
    dataset = load_omniglot("lake", subset, data_root=data_root, image_size=28)
    counts = set(dataset.offsets.diff().tolist())
    if len(counts) != 1:
        raise LtlError(f"every Omniglot character should have 20 drawings, found {sorted(counts)}")
    images = dataset.to_float(torch.arange(len(dataset.images))).reshape(
        len(dataset.class_names), counts.pop(), 1, 28, 28
    )
    alphabets = [name.split("/")[0] for name in dataset.class_names]
    names = sorted(set(alphabets))
    return images, torch.tensor([names.index(a) for a in alphabets])


def network(config: ContinualRunConfig) -> Network:
    generator = torch.Generator().manual_seed(config.seed)
    if config.algorithm == "oml":
        settings = oml.OMLConfig(config.channels, config.hidden, config.classes)
        params = oml.init_oml(settings, generator)
        return Network(oml.oml_logits, params, oml.OUTPUT, oml.FAST, oml.FAST)
    if config.algorithm == "anml":
        params = anml.init_anml(anml.ANMLConfig(config.channels, config.nm_channels, config.classes), generator)
        return Network(anml.anml_logits, params, anml.OUTPUT, anml.meta_training_fast(params), anml.META_TEST_FAST)
    raise UnknownNameError(f"unknown continual algorithm {config.algorithm!r}; choose oml or anml")


def meta_train(config: ContinualRunConfig, images: Tensor, run: Path, log: Callable[[str], Any] = print) -> Params:
    """Meta-train on ``images`` ``[classes, per_class, 1, 28, 28]`` (the meta-training classes, floats), continuing
    from the run folder's checkpoint if there is one."""
    if len(images) > config.classes:
        raise LtlError(f"{len(images)} meta-training classes do not fit {config.classes} outputs")
    net = network(config)
    params = {n: v.clone().requires_grad_(True) for n, v in net.params.items()}
    optimiser = torch.optim.Adam(params.values(), lr=config.meta_lr)
    generator = torch.Generator().manual_seed(1_000_003 + config.seed)
    step, cpu_before, losses = 0, 0.0, []
    run.mkdir(parents=True, exist_ok=True)
    with FolderLock(run):
        checkpoint = run / "checkpoint.pt"
        state = matching_checkpoint(run, asdict(config), "continual checkpoint", length="steps")
        if state is not None:
            with torch.no_grad():
                for name, value in state["params"].items():
                    params[name].copy_(value)
            optimiser.load_state_dict(state["optimiser"])
            generator.set_state(state["generator"])
            step, cpu_before, losses = state["step"], state["cpu_seconds"], list(state["losses"])
            log(f"resuming at step {step}")
        started = time.process_time()
        classes, per_class = images.shape[:2]
        while step < config.steps:
            chosen = int(torch.randint(classes, (1,), generator=generator))
            reset_output_row(params, net.output, chosen, generator)
            order = torch.randperm(per_class, generator=generator)[: config.trajectory]
            trajectory = (images[chosen, order], torch.full((len(order),), chosen))
            others = torch.randint(classes, (config.remember,), generator=generator)
            picks = torch.randint(per_class, (config.remember,), generator=generator)
            remember = (images[others, picks], others)
            loss = remembering_loss(
                net.logits,
                params,
                net.meta_training_fast,
                trajectory,
                remember,
                config.inner_lr,
                first_order=config.first_order,
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % config.checkpoint_every == 0 or step == config.steps:
                cpu = cpu_before + time.process_time() - started
                save_tensors(
                    {
                        "config": asdict(config),
                        "params": {n: v.detach() for n, v in params.items()},
                        "optimiser": optimiser.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "cpu_seconds": cpu,
                        "losses": losses,
                    },
                    checkpoint,
                )
                recent = losses[-config.checkpoint_every :]
                log(f"step {step}: remembering loss {sum(recent) / len(recent):.3f}, {cpu:.0f} CPU s")
    return {n: v.detach() for n, v in params.items()}


def pretrain(config: ContinualRunConfig, images: Tensor, steps: int, batch: int = 64, lr: float = 1e-3) -> Params:
    """The same network trained as an ordinary classifier of the meta-training classes (Adam, mini-batches):
    the start of the pretrained fine-tuning baselines."""
    net = network(config)
    params = {n: v.clone().requires_grad_(True) for n, v in net.params.items()}
    optimiser = torch.optim.Adam(params.values(), lr=lr)
    generator = torch.Generator().manual_seed(2_000_003 + config.seed)
    classes, per_class = images.shape[:2]
    for _ in range(steps):
        labels = torch.randint(classes, (batch,), generator=generator)
        picks = torch.randint(per_class, (batch,), generator=generator)
        loss = F.cross_entropy(net.logits(params, images[labels, picks]), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return {n: v.detach() for n, v in params.items()}


def learner_factory(
    run: str | Path, optimizer: str = "sgd", outputs: int | None = None, seed: int = 0
) -> tuple[ContinualRunConfig, Callable[[float], OnlineLearner]]:
    """A meta-trained run's settings and fresh online learners at a given rate: its meta-test parameters learn,
    its output layer starts fresh (the same draw for every learner, from ``seed``; cut to ``outputs`` units if
    given)."""
    state = load_tensors(Path(run) / "checkpoint.pt", "continual checkpoint")
    config = ContinualRunConfig(**state["config"])
    net = network(config)
    start = with_fresh_output(dict(state["params"]), net.output, torch.Generator().manual_seed(seed), outputs)

    def make(rate: float) -> OnlineLearner:
        return OnlineLearner(net.logits, start, net.meta_test_fast, rate, optimizer=optimizer)

    return config, make


def online_learner(run: str | Path, lr: float, optimizer: str = "sgd", outputs: int | None = None) -> OnlineLearner:
    """A learner for your own stream, from a meta-trained run: ``observe(images, labels)`` one step per call,
    ``predict(images)``; labels from 0 to ``outputs - 1`` (the run's class count if not given)."""
    return learner_factory(run, optimizer, outputs)[1](lr)


def evaluate_run(
    run: Path, counts: list[int], orders: int, lr: float | None, optimizer: str, data_root: str | None, seed: int = 0
) -> dict[str, Any]:
    """A run's curves on Omniglot's evaluation characters (15 drawings learnt, 5 held out per character), its
    output layer fresh and its meta-test parameters learning online at ``lr`` (chosen on the meta-validation
    characters if not given)."""
    config, make = learner_factory(run, optimizer, seed=seed)
    if lr is None:
        validation = deal(omniglot_classes("background", data_root)[config.meta_train_classes :], 15, seed)
        lr = choose_rate(make, validation, min(50, len(validation.train)), 3, seed)
    evaluation = deal(omniglot_classes("evaluation", data_root), 15, seed)
    curves = continual_curves(partial(make, lr), evaluation, counts, orders, seed + 1000)
    steps = load_tensors(run / "checkpoint.pt", "continual checkpoint")["step"]
    return {"run": str(run), "steps": steps, "lr": lr, "optimizer": optimizer, "curves": curves}
