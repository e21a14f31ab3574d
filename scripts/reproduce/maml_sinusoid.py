"""Reproduce MAML's sinusoid regression experiment (Finn et al. 2017, Section 5.1, Figure 2/3).

    python scripts/reproduce/maml_sinusoid.py --shots 10 --out runs/maml-sinusoid-k10
    python scripts/reproduce/maml_sinusoid.py --table runs/maml-sinusoid-k5 runs/maml-sinusoid-k10

Paper setting: an MLP with two hidden layers of 40 ReLU units, K support points per task, one
inner gradient step of size 0.01, meta-batch 25 tasks of K support and K query points, Adam with
1e-3, 70,000 meta-iterations. MAML meta-trains through the library's one training loop (the
``maml-sinusoid-k10`` preset with K and the iterations set, in ``<out>/maml``: ``ltl train`` would
do the same). The baseline is the paper's "pretrained" network: the same MLP trained by Adam to
regress the sinusoids of random tasks for as many iterations (plain supervised regression, here),
fine-tuned at test time with an inner step size chosen on validation tasks. Both are scored with
their final weights by the query MSE on 600 fixed new tasks (100 query points each) after 0, 1 and
10 gradient steps on the K support points. Both checkpoint atomically and resume when rerun with the
same arguments; results are appended to ``<out>/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from learntolearn.algorithms import MAML
from learntolearn.data.sinusoid import SinusoidTasks
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.engine.trainer import Trainer
from learntolearn.experiments.presets import get_preset
from learntolearn.files import load_tensors, save_tensors
from learntolearn.nn.backbones import mlp

TEST_SEED, VAL_SEED = 1000, 2000
STEP_SIZES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def post_update_mse(learner: MAML, tasks, steps: int) -> torch.Tensor:
    """Query MSE of each task after ``steps`` inner steps on its support set."""
    learner.eval()
    errors = []
    for task in tasks:
        if steps == 0:
            with torch.no_grad():
                prediction = learner.model(task.query_x)
        else:
            learner.test_inner_steps = steps
            prediction = learner.predict(learner.adapt(task.support_x, task.support_y), task.query_x).detach()
        errors.append(F.mse_loss(prediction, task.query_y).item())
    return torch.tensor(errors, dtype=torch.float64)


def tune_step_size(learner: MAML, validation) -> None:
    """Set the fine-tuning step size with the lowest one-step MSE on validation tasks."""
    scores = {}
    for lr in STEP_SIZES:
        learner.inner_lr = lr
        scores[lr] = post_update_mse(learner, validation, 1).mean().item()
    learner.inner_lr = min(scores, key=scores.__getitem__)


def meta_train(out: Path, iterations: int, shots: int, seed: int) -> tuple[MAML, float]:
    """MAML meta-trained by the library's Trainer in ``out``; returns it at its final weights, and the training seconds."""
    config = get_preset("maml-sinusoid-k10").config.with_keys(
        shots=shots, train_queries=shots, steps=iterations, seed=seed
    )
    trainer = Trainer(config, out, resume=(out / "config.json").exists(), progress=False)
    trainer.run()
    learner = trainer.algorithm
    learner.load_state_dict(load_tensors(out / "last.pt")["model"])
    assert isinstance(learner, MAML)
    return learner, trainer.train_seconds


def pretrain(learner: MAML, out: Path, iterations: int, shots: int, seed: int) -> float:
    """Train ``learner.model`` to regress random sinusoids, with checkpoints; returns the training seconds."""
    checkpoint = out / "pretrained.pt"
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    stream = SinusoidTasks(shots, shots, seed=seed)
    start, seconds = 0, 0.0
    if checkpoint.exists():
        state = load_tensors(checkpoint)
        learner.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stream.load_state_dict(state["stream"])
        start, seconds = state["iteration"], state["seconds"]
    learner.train()
    for iteration in range(start, iterations):
        began = time.perf_counter()
        batch = [stream.sample() for _ in range(25)]
        x = torch.cat([torch.cat([t.support_x, t.query_x]) for t in batch])
        y = torch.cat([torch.cat([t.support_y, t.query_y]) for t in batch])
        loss = F.mse_loss(learner.model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - began
        if (iteration + 1) % 5000 == 0 or iteration + 1 == iterations:
            save_tensors(
                {
                    "model": learner.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "stream": stream.state_dict(),
                    "iteration": iteration + 1,
                    "seconds": seconds,
                },
                checkpoint,
            )
            print(f"pretrained: iteration {iteration + 1}, loss {loss.item():.3f}, {seconds:.0f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="MAML sinusoid regression, paper setting.")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=70000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="*", help="print the README table of these run folders")
    args = parser.parse_args()
    if args.table:
        print_table(args.table)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    started = provenance()
    maml, maml_seconds = meta_train(args.out / "maml", args.iterations, args.shots, args.seed)
    torch.manual_seed(args.seed + 1)
    pretrained = MAML(mlp(1, (40, 40), 1), inner_lr=0.01, loss="mse")
    seconds = {
        "maml": maml_seconds,
        "pretrained": pretrain(pretrained, args.out, args.iterations, args.shots, args.seed + 1),
    }
    validation = [t for t, _ in zip(SinusoidTasks(args.shots, 100, seed=VAL_SEED), range(200))]
    tune_step_size(pretrained, validation)
    test = [t for t, _ in zip(SinusoidTasks(args.shots, 100, seed=TEST_SEED), range(600))]
    with open(args.out / "results.jsonl", "a") as f:
        for name, learner in (("maml", maml), ("pretrained", pretrained)):
            for steps in (0, 1, 10):
                errors = post_update_mse(learner, test, steps)
                record = {
                    "method": name,
                    "shots": args.shots,
                    "gradient_steps": steps,
                    "mse": errors.mean().item(),
                    "ci95": confidence_interval(errors),
                    "test_tasks": len(test),
                    "inner_lr": learner.inner_lr,
                    "iterations": args.iterations,
                    "seed": args.seed,
                    "train_seconds": round(seconds[name], 1),
                    **started,
                }
                print(json.dumps(record), flush=True)
                f.write(json.dumps(record) + "\n")


def print_table(folders: list[Path]) -> None:
    print(
        "| K | method | MSE after 0 steps | after 1 step | after 10 steps | inner lr | iterations | train time | seed | commit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        for method in ("maml", "pretrained"):
            mine = {r["gradient_steps"]: r for r in rows if r["method"] == method}
            r = mine[1]
            cells = " | ".join(f"{mine[s]['mse']:.3f} ± {mine[s]['ci95']:.3f}" for s in (0, 1, 10))
            print(
                f"| {r['shots']} | {method} | {cells} | {r['inner_lr']} | {r['iterations']} | "
                f"{r['train_seconds'] / 60:.1f} min ({r['threads']} thread) | {r['seed']} | `{r['commit'][:10]}` |"
            )


if __name__ == "__main__":
    main()
