"""RL²'s bandit table (Duan et al. 2016, Table 1 settings): total reward of n pulls on k-armed Bernoulli bandits
with arm probabilities from U[0, 1], for the hand-designed learners, on the same fixed tasks for every row.

    python scripts/reproduce/rl2_bandits.py
    python scripts/update_docs.py --write

Writes results/rl2-bandits.json (every task's total per learner and setting, so paired differences can be
recomputed, and the tuned settings) and results/rl2-bandits.md, with provenance and CPU time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from parts import kept_columns

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.files import load_tensors, write_json, write_text
from learntolearn.rl.bandits import STRATEGIES, Strategy, epsilon_greedy, gittins, play, ucb1
from learntolearn.rl.runs import evaluate_rl2
from learntolearn.rl.tasks import BernoulliBandits

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = [(k, n) for n in (10, 100, 500) for k in (5, 10, 50)]
#: learners whose setting is chosen per (k, n) on other tasks (drawn with seed + VALIDATION_OFFSET), as the
#: paper tuned its baselines; the textbook settings keep their own rows
TUNED: dict[str, tuple[Callable[[float, int], Strategy], tuple[float, ...]]] = {
    "epsilon-greedy (tuned)": (lambda value, pulls: epsilon_greedy(value), (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)),
    "UCB1 (tuned c)": (lambda value, pulls: ucb1(value), (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
    "Gittins index (tuned discount)": (
        lambda value, pulls: gittins(value, pulls),
        (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999),
    ),
}
VALIDATION_OFFSET = 1000
RL2_ROW = "RL² (ours: GRU + PPO)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rl2-run",
        type=Path,
        action="append",
        default=[],
        help="An RL² bandit run folder (ltl rl train) to score on the same tasks; repeatable. RL² columns of the "
        "table already in --out whose run is not given are kept from it.",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.process_time()
    totals: dict[str, dict[str, list[float]]] = {}
    tuned_settings: dict[str, dict[str, float]] = {name: {} for name in TUNED}
    for k, n in SETTINGS:
        bandits = BernoulliBandits(k)
        probabilities = bandits.sample(args.tasks, torch.Generator().manual_seed(args.seed))
        validation = bandits.sample(args.tasks, torch.Generator().manual_seed(args.seed + VALIDATION_OFFSET))
        learners = {name: make() for name, make in STRATEGIES.items()}
        for name, (family, grid) in TUNED.items():
            scores = {
                value: play(family(value, n), bandits, validation, n, torch.Generator().manual_seed(args.seed))
                .mean()
                .item()
                for value in grid
            }
            best = max(grid, key=lambda value: scores[value])
            tuned_settings[name][f"k={k},n={n}"] = best
            learners[name] = family(best, n)
        for offset, (name, strategy) in enumerate(learners.items()):
            generator = torch.Generator().manual_seed(args.seed + 1 + offset)
            totals.setdefault(name, {})[f"k={k},n={n}"] = (
                play(strategy, bandits, probabilities, n, generator).long().tolist()
            )  # successes: whole numbers
    rl2_runs = []
    for run in args.rl2_run:
        scored = evaluate_rl2(run, tasks=args.tasks, seed=args.seed)
        config = load_tensors(run / "checkpoint.pt", "RL² checkpoint")["config"]
        column = f"k={config['arms']},n={config['pulls']}"
        totals.setdefault(RL2_ROW, {})[column] = [int(v) for v in scored["totals"]]
        rl2_runs.append(
            {"column": column, "config": config, "iteration": scored["iteration"], "cpu_seconds": scored["cpu_seconds"]}
        )
    kept, kept_runs = kept_columns(
        args.out / "rl2-bandits.json", RL2_ROW, args.tasks, args.seed, {r["column"] for r in rl2_runs}
    )
    if kept:
        totals.setdefault(RL2_ROW, {}).update(kept)
        rl2_runs += kept_runs
    cpu = round(time.process_time() - started, 1)
    record = {
        "settings": SETTINGS,
        "tasks": args.tasks,
        "seed": args.seed,
        "tuned_settings": tuned_settings,
        "rl2_runs": rl2_runs,
        "totals": totals,
        "cpu_seconds": cpu,
    }
    record.update(provenance())
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "rl2-bandits.json", record)
    columns = [f"k={k},n={n}" for k, n in SETTINGS]
    lines = [
        f"Generated by `python scripts/reproduce/rl2_bandits.py` at commit `{record['commit'][:10]}` ({cpu:,} CPU s, "
        f"2-core x86_64). Total reward per trial, mean over the same {args.tasks} tasks (seed {args.seed}) with a "
        "normal 95% interval. Textbook rows: epsilon 0.1, UCB1's c = 1; tuned rows: the setting chosen per column "
        f"on {args.tasks} other tasks ({', '.join(f'{n}: {g}' for n, (_, g) in TUNED.items())}). "
        + (
            "RL² (GRU 256, PPO; run settings, iterations and CPU time in the JSON) is scored on the same tasks; "
            "— where not trained."
            + (
                f" Kept from earlier tables (run folders not given): {', '.join(r['column'] for r in kept_runs)}."
                if kept_runs
                else ""
            )
            if rl2_runs
            else "RL² rows follow when trained."
        ),
        "",
        "| learner | " + " | ".join(f"n={n}, k={k}" for k, n in SETTINGS) + " |",
        "|---|" + "---|" * len(SETTINGS),
    ]
    for name in totals:
        cells = []
        for column in columns:
            if column not in totals[name]:
                cells.append("—")
                continue
            values = np.array(totals[name][column])
            cells.append(f"{values.mean():.1f} ± {confidence_interval(torch.from_numpy(values)):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text(args.out / "rl2-bandits.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
