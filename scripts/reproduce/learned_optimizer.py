"""Andrychowicz et al. 2016: meta-train the coordinate-wise LSTM optimizer, compare it with tuned SGD,
Adam, RMSprop and Nesterov momentum on held-out problems, and plot the loss curves.

    python scripts/reproduce/learned_optimizer.py --problem quadratic --iterations 1000 --out runs/l2o-quadratic
    python scripts/reproduce/learned_optimizer.py --problem mlp --iterations 200 --out runs/l2o-mlp
    python scripts/reproduce/learned_optimizer.py --table runs/l2o-quadratic runs/l2o-mlp

Quadratics: 10x10 ``||W theta - y||^2`` (Section 3.1); held-out problems are drawn with another seed.
MLP: one hidden layer of 20 sigmoid units on 10 glyph classes (Section 3.2's MNIST net on our generated
glyphs); meta-trained on training classes, evaluated on unseen test classes. Baselines get the best
step size of a grid, chosen on training-distribution problems. Meta-training checkpoints atomically
every 25 iterations and resumes; progress goes to OUT/metrics.jsonl, results to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from learntolearn.engine.provenance import provenance
from learntolearn.experiments.plots import pyplot
from learntolearn.files import load_tensors, save_tensors
from learntolearn.l2o import (
    CoordinatewiseLSTM,
    GlyphMLP,
    LearnedOptimizer,
    Quadratics,
    meta_train,
    run_optimizer,
)

GRIDS = {
    "quadratic": {
        "SGD": [0.001, 0.003, 0.01, 0.03],
        "Adam": [0.03, 0.1, 0.3, 1.0, 3.0],
        "RMSprop": [0.003, 0.01, 0.03, 0.1, 0.3],
        "NAG": [0.001, 0.003, 0.01, 0.03],
    },
    "mlp": {
        "SGD": [0.3, 1.0, 3.0, 10.0],
        "Adam": [0.003, 0.01, 0.03, 0.1],
        "RMSprop": [0.001, 0.003, 0.01, 0.03],
        "NAG": [0.1, 0.3, 1.0, 3.0],
    },
}
OPTIMIZERS = {
    "SGD": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "Adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    "RMSprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
    "NAG": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
}


def problems(kind: str):
    return (Quadratics(), Quadratics()) if kind == "quadratic" else (GlyphMLP("train"), GlyphMLP("test"))


def train(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    train_problem, held_out = problems(args.problem)
    torch.manual_seed(args.seed)
    net, done, seconds = CoordinatewiseLSTM(), 0, 0.0
    checkpoint = args.out / "lstm.pt"
    if checkpoint.exists():
        state = load_tensors(checkpoint)
        net.load_state_dict(state["net"])
        done, seconds = state["iterations"], state["seconds"]
    metrics = open(args.out / "metrics.jsonl", "a")
    while done < args.iterations:
        chunk = min(25, args.iterations - done)
        started = time.perf_counter()
        meta_train(
            net,
            train_problem,
            iterations=chunk,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed + done,
            log=lambda i, loss: metrics.write(json.dumps({"iteration": done + i + 1, "meta_loss": loss}) + "\n"),
        )
        metrics.flush()
        done, seconds = done + chunk, seconds + time.perf_counter() - started
        save_tensors({"net": net.state_dict(), "iterations": done, "seconds": seconds}, checkpoint)
        print(f"{done}/{args.iterations} meta-iterations, {seconds:.0f} s", flush=True)
    curves = {
        "LSTM (learned)": {"lr": None, "curve": run_optimizer(held_out, lambda p: LearnedOptimizer(p, net)).tolist()}
    }
    for name, grid in GRIDS[args.problem].items():
        finals = {lr: float(run_optimizer(train_problem, lambda p: OPTIMIZERS[name](p, lr), seed=3)[-1]) for lr in grid}
        best = min((v, lr) for lr, v in finals.items() if v == v)[1]
        curves[name] = {"lr": best, "curve": run_optimizer(held_out, lambda p: OPTIMIZERS[name](p, best)).tolist()}
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "problem": args.problem,
                "meta_iterations": done,
                "meta_train_seconds": round(seconds, 1),
                "seed": args.seed,
                "held_out": "100 problems, seed 1" + (" (unseen glyph classes)" if args.problem == "mlp" else ""),
                "curves": curves,
                **provenance(),
            },
            indent=2,
        )
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, entry in curves.items():
        ax.plot(entry["curve"], label=name + (f" (lr {entry['lr']})" if entry["lr"] else ""))
    ax.set(yscale="log", xlabel="optimizer step", ylabel="mean loss on held-out problems", title=args.problem)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "loss_curves.png", dpi=120)
    print(f"wrote {args.out}/results.json and loss_curves.png")


def table(runs: list[Path]) -> None:
    print("| problem | optimizer | step size | loss after 10 steps | after 50 | after 100 | meta-training | commit |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        r = json.loads((run / "results.json").read_text())
        for name, entry in r["curves"].items():
            c = entry["curve"]
            print(
                f"| {r['problem']} | {name} | {entry['lr'] or 'learned'} | {c[10]:.3g} | {c[50]:.3g} | {c[100]:.3g} | "
                f"{r['meta_iterations']} iterations, {r['meta_train_seconds'] / 60:.1f} min ({r['threads']} thread) | "
                f"`{r['commit'][:10]}` |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=["quadratic", "mlp"], default="quadratic")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+")
    args = parser.parse_args()
    if args.table:
        table(args.table)
    elif args.out:
        train(args)
    else:
        parser.error("give --out RUN_DIR to train, or --table RUN_DIR ...")


if __name__ == "__main__":
    main()
