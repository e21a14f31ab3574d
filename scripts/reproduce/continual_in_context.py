"""In-context continual learning (ACL, Irie et al.) against OML/ANML on the same sequences of few-shot tasks:
Omniglot alphabets (each task 5 characters of one alphabet, 5 drawings shown each, tasks from different
alphabets) and Fashion-MNIST class pairs (Split-Fashion-MNIST: T-shirt/trouser, pullover/dress, ..., one task
after another). Every task reuses the label slots 0 .. ways-1, so after task B a learner must still map task A's
inputs to A's labels.

    python scripts/reproduce/continual_in_context.py --run runs/oml-omniglot --run runs/anml-omniglot
    python scripts/update_docs.py --write

The in-context learner (the library's recurrent learner, an LSTM over [features; label] tokens) reads frozen
features of a network pretrained on the meta-training background characters (a CPU budget: ACL trains its
encoder end to end), meta-trained three ways: on single tasks, on two-task sequences scored on the current task
only, and with ACL's objective (after each task, the queries of every task so far). OML/ANML (their meta-trained
networks, output layer fresh) and the pretrained network with a fresh output layer learn the same labelled
examples online, one step each, their rates chosen on meta-validation alphabets. Writes
results/continual-in-context.json (per-sequence accuracies of every method) and .md, with provenance.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from learntolearn.algorithms.inner import Params
from learntolearn.continual.in_context import (
    OBJECTIVES,
    InContextConfig,
    InContextContinualLearner,
    TaskSequences,
    grouped_tasks,
    in_context_accuracy,
    meta_train_in_context,
    online_accuracy,
    task_sequences,
)
from learntolearn.continual.layers import with_fresh_output
from learntolearn.continual.runs import ContinualRunConfig, Network, network, omniglot_characters, pretrain
from learntolearn.continual.stream import RATES, OnlineLearner
from learntolearn.data.fashion_mnist import load_fashion_mnist
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.files import FolderLock, load_tensors, save_tensors, write_text
from learntolearn.nn.functional import conv_stack

ROOT = Path(__file__).resolve().parents[2]


def fashion_pairs(data_root: str | None, per_class: int, seed: int) -> Tensor:
    """``per_class`` test images of each Fashion-MNIST class (seeded), ``[10, per_class, 1, 28, 28]`` floats."""
    dataset = load_fashion_mnist("official", "test", data_root=data_root)
    generator = torch.Generator().manual_seed(seed)
    picks = [
        int(start) + torch.randperm(int(end - start), generator=generator)[:per_class]
        for start, end in zip(dataset.offsets[:-1], dataset.offsets[1:])
    ]
    return torch.stack([dataset.to_float(p) for p in picks])


def stage(path: Path, settings: dict[str, Any], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A stage's stored result, or ``make()``'s, stored atomically with its settings and CPU time (so an
    interrupted script resumes after its last finished stage)."""
    if path.exists():
        state = load_tensors(path, "stored stage")
        if state["settings"] != settings:
            raise SystemExit(f"{path} was made with other settings; give another --work folder or remove it")
        return state
    before = time.process_time()
    state = {**make(), "settings": settings}
    state["cpu_seconds"] = round(time.process_time() - before, 1)
    save_tensors(state, path)
    return state


def meta_learned(net: Network, params: Params, fresh: torch.Generator) -> Callable[[float, int], OnlineLearner]:
    """An OML/ANML run's online learner at a rate, its output layer fresh and cut to a task's label slots."""

    def make(lr: float, outputs: int) -> OnlineLearner:
        return OnlineLearner(net.logits, with_fresh_output(params, net.output, fresh, outputs), net.meta_test_fast, lr)

    return make


def summary(scores: Tensor) -> dict[str, Any]:
    """Means and 95% intervals (%) of per-sequence ``[B, T, T]`` accuracies: each task right after it, the first
    task after the last, every task after the last, and forgetting (first task right after it minus after the
    last)."""
    last = scores[:, -1].mean(-1)
    right_after = scores.diagonal(dim1=1, dim2=2).mean(-1)
    first_after_last, forgetting = scores[:, -1, 0], scores[:, 0, 0] - scores[:, -1, 0]
    parts = {"just learnt": right_after, "first task at the end": first_after_last, "all tasks at the end": last}
    parts["forgetting of the first task"] = forgetting
    return {k: [100 * float(v.mean()), 100 * confidence_interval(v)] for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, action="append", default=[], help="An OML or ANML run; repeatable.")
    parser.add_argument("--steps", type=int, default=20_000, help="Meta-training steps of each in-context learner.")
    parser.add_argument("--pretrain-steps", type=int, default=5000)
    parser.add_argument("--sequences", type=int, default=200, help="Evaluation sequences per setting.")
    parser.add_argument("--validation-sequences", type=int, default=20)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--from-results", action="store_true", help="Only rewrite the table from the stored scores.")
    parser.add_argument("--train-only", action="store_true", help="Stop after the trained stages are stored.")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument(
        "--work", type=Path, default=Path("runs/continual-in-context"), help="Trained stages (resumable)."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.from_results:
        write_text(
            args.out / "continual-in-context.md",
            table(json.loads((args.out / "continual-in-context.json").read_text())),
        )
        return
    torch.set_num_threads(1)
    started = time.process_time()
    base = ContinualRunConfig("pretrained", "oml")
    background, alphabets = omniglot_characters("background", args.data_root)
    evaluation, evaluation_alphabets = omniglot_characters("evaluation", args.data_root)
    train_count = base.meta_train_classes
    lock = FolderLock(args.work)  # noqa: F841 (held while the script runs)
    encoder = stage(
        args.work / "encoder.pt",
        {"pretrain_steps": args.pretrain_steps, "config": asdict(base)},
        lambda: {"params": pretrain(base, background[:train_count], args.pretrain_steps)},
    )
    pretrained = encoder["params"]
    print(f"pretrained the encoder ({encoder['cpu_seconds']:.0f} CPU s)", flush=True)

    def encode(images: Tensor) -> Tensor:
        with torch.no_grad():
            flat = images.flatten(0, 1)
            out = torch.cat([conv_stack(pretrained, "rln", part) for part in flat.split(1000)])
        return out.view(*images.shape[:2], -1)

    raw = encode(background[:train_count])
    mean, scale = raw.mean((0, 1)), raw.std((0, 1)) + 1e-6

    def features(images: Tensor) -> Tensor:
        return (encode(images) - mean) / scale

    settings = InContextConfig(steps=args.steps, seed=args.seed)
    learners = {}
    train_cpu = {}
    train_features = (raw - mean) / scale
    for objective in OBJECTIVES:
        objective_settings = replace(settings, objective=objective)

        def meta_train(chosen: InContextConfig = objective_settings) -> dict[str, Any]:
            model = meta_train_in_context(chosen, train_features, alphabets[:train_count])
            return {"state": model.state_dict()}

        trained = stage(
            args.work / f"{objective}.pt", {**asdict(objective_settings), "encoder": encoder["settings"]}, meta_train
        )
        learners[objective] = InContextContinualLearner(
            features(background[:1]).shape[-1],
            objective_settings.ways,
            objective_settings.hidden,
            objective_settings.layers,
        )
        learners[objective].load_state_dict(trained["state"])
        learners[objective].eval()
        train_cpu[objective] = trained["cpu_seconds"]
        print(f"meta-trained {objective} ({train_cpu[objective]:.0f} CPU s)", flush=True)

    if args.train_only:
        return
    generator = torch.Generator().manual_seed(10_000 + args.seed)
    ways, shots, queries = settings.ways, settings.shots, settings.queries

    def omniglot_setting(tasks: int, images: Tensor, groups: Tensor, count: int) -> TaskSequences:
        return task_sequences(
            grouped_tasks(groups, count, tasks, ways, generator), images.shape[1], shots, queries, generator
        )

    fashion = fashion_pairs(args.data_root, 100, args.seed)
    pairs = torch.arange(10).view(1, 5, 2).expand(args.sequences, -1, -1)
    settings_data: dict[str, tuple[Tensor, TaskSequences]] = {
        "omniglot, 2 tasks": (evaluation, omniglot_setting(2, evaluation, evaluation_alphabets, args.sequences)),
        "omniglot, 3 tasks": (evaluation, omniglot_setting(3, evaluation, evaluation_alphabets, args.sequences)),
        "fashion-mnist, 5 class pairs": (fashion, task_sequences(pairs, fashion.shape[1], shots, queries, generator)),
    }
    validation_images = background[train_count:]
    validation = omniglot_setting(2, validation_images, alphabets[train_count:], args.validation_sequences)

    online: dict[str, Callable[[float, int], OnlineLearner]] = {}
    runs = []
    fresh = torch.Generator().manual_seed(args.seed)
    for run in args.run:
        state = load_tensors(run / "checkpoint.pt", "continual checkpoint")
        config = ContinualRunConfig(**state["config"])
        net = network(config)
        runs.append(
            {"run": str(run), "config": state["config"], "steps": state["step"], "cpu_seconds": state["cpu_seconds"]}
        )

        online[config.algorithm.upper()] = meta_learned(net, dict(state["params"]), fresh)
    plain = network(base)
    online["online from scratch (whole network)"] = lambda lr, outputs: OnlineLearner(
        plain.logits, with_fresh_output(plain.params, plain.output, fresh, outputs), tuple(plain.params), lr
    )
    online["pretrained, output layer fine-tuned"] = lambda lr, outputs: OnlineLearner(
        plain.logits,
        with_fresh_output(pretrained, plain.output, fresh, outputs),
        (f"{plain.output}.weight", f"{plain.output}.bias"),
        lr,
    )

    def final_accuracy(name: str, rate: float) -> float:
        scores = online_accuracy(lambda: online[name](rate, ways), validation_images, validation)
        return float(scores[:, -1].mean())

    rates = {name: max(RATES, key=partial(final_accuracy, name)) for name in online}
    print("online rates chosen on meta-validation alphabets:", rates, flush=True)

    results: dict[str, dict[str, Any]] = {}
    for setting, (images, sequences) in settings_data.items():
        task_ways = sequences.classes.shape[2]
        per_method: dict[str, Tensor] = {}
        for objective, model in learners.items():
            per_method[f"in-context, {objective}"] = in_context_accuracy(model, features(images), sequences)
        for name, make in online.items():
            per_method[name] = online_accuracy(partial(make, rates[name], task_ways), images, sequences)
        results[setting] = {
            name: {"summary": summary(scores), "scores": scores.nan_to_num(-1).double().round(decimals=4).tolist()}
            for name, scores in per_method.items()
        }
        print(
            setting,
            {name: round(entry["summary"]["all tasks at the end"][0], 1) for name, entry in results[setting].items()},
            flush=True,
        )

    cpu = round(time.process_time() - started, 1)
    record = {
        "settings": asdict(settings),
        "pretrain_steps": args.pretrain_steps,
        "sequences": args.sequences,
        "rates": rates,
        "runs": runs,
        "train_cpu_seconds": {"encoder": encoder["cpu_seconds"], **train_cpu},
        "results": results,
        "cpu_seconds": cpu,
        **provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "continual-in-context.json", json.dumps(record) + "\n")  # compact: 7,600 scores a learner
    write_text(args.out / "continual-in-context.md", table(record))
    print(table(record))


def table(record: dict[str, Any]) -> str:
    s = record["settings"]
    trained = ", ".join(f"{k} {v:,.0f}" for k, v in record["train_cpu_seconds"].items())
    runs = ", ".join(f"{r['config']['name']} {r['steps']:,} steps" for r in record["runs"]) or "none"
    lines = [
        f"Generated by `python scripts/reproduce/continual_in_context.py` at commit `{record['commit'][:10]}` "
        f"({record['cpu_seconds']:,} CPU s to evaluate, 2-core x86_64; meta-training CPU s: {trained}). Tasks of "
        f"{s['ways']} classes (Fashion-MNIST: 2), {s['shots']} labelled examples each shown once, {s['queries']} "
        f"queries per class; labels 0 .. ways-1 reused by every task; {record['sequences']} sequences per setting, "
        f"the same for every method; accuracy (%) with a normal 95% interval over sequences. In-context learners "
        f"meta-trained {s['steps']:,} steps on two-task sequences of meta-training alphabets (single: one task). "
        f"OML/ANML runs: {runs}; online rates chosen on meta-validation alphabets "
        f"({', '.join(f'{n}: {r}' for n, r in record['rates'].items())}).",
    ]
    columns = ("just learnt", "first task at the end", "all tasks at the end", "forgetting of the first task")
    for setting, methods in record["results"].items():
        lines += [
            "",
            f"**{setting}**",
            "",
            "| learner | " + " | ".join(columns) + " |",
            "|---|" + "---|" * len(columns),
        ]
        for name, entry in methods.items():
            cells = [f"{entry['summary'][c][0]:.1f} ± {entry['summary'][c][1]:.1f}" for c in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
