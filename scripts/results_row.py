"""Print README result rows of runs: the end-of-training test result and every `ltl eval` of the run.

    python scripts/results_row.py RUN_DIR [RUN_DIR ...]
    python scripts/results_row.py --curve RUN_DIR     # validation accuracy against training hours

A run stopped before its last step has no end-of-training result; its rows then report the step
and training time of its last checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def rows(run_dir: Path) -> list[str]:
    config = json.loads((run_dir / "config.json").read_text())
    trained = json.loads((run_dir / "provenance.json").read_text())
    results = run_dir / "results.json"
    if results.exists():
        r = json.loads(results.read_text())
        steps, seconds = r["steps"], r["train_seconds"]
    else:
        last = torch.load(run_dir / "last.pt", weights_only=False, map_location="cpu")
        steps, seconds = last["step"], last["train_seconds"]
    train = (f"{config['train_ways'] or config['ways']}-way {config['shots']}-shot, "
             f"{config['train_queries'] or config['queries']} queries, meta-batch {config['meta_batch']}, "
             f"{steps} of {config['steps']} steps on {config['train_subset']}")
    common = f"{train} | {seconds / 3600:.2f} h, {trained['threads']} thread | {config['seed']} | `{trained['commit'][:10]}`"
    lines = []
    if results.exists():
        lines.append(f"| {config['algorithm']} | {config['dataset']} {config['split']}/{config['test_subset']} "
                     f"{config['ways']}-way {config['shots']}-shot, at the end of training | "
                     f"{100 * r['test_accuracy']:.2f} ± {100 * r['test_ci95']:.2f} | {r['episodes']} | {common} |")
    evaluations = run_dir / "evaluations.jsonl"
    for line in evaluations.read_text().splitlines() if evaluations.exists() else []:
        e = json.loads(line)
        lines.append(f"| {config['algorithm']} | {e['evaluation']}, `ltl eval` at `{e['commit'][:10]}` | "
                     f"{100 * e['accuracy']:.2f} ± {100 * e['ci95']:.2f} | {e['episodes']} | {common} |")
    return lines


def curve(run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    hours = {r["step"]: r["train_seconds"] / 3600 for r in rows if "train_seconds" in r}
    print("| step | training hours | validation accuracy % (95% CI) |")
    print("|---|---|---|")
    for r in rows:
        if "val_accuracy" in r:
            print(f"| {r['step']} | {hours[r['step']]:.2f} | {100 * r['val_accuracy']:.2f} ± {100 * r['val_ci95']:.2f} |")


if __name__ == "__main__":
    if sys.argv[1] == "--curve":
        curve(Path(sys.argv[2]))
        sys.exit()
    print("| algorithm | evaluation | accuracy % (95% CI) | episodes | training | train time | seed | trained at |")
    print("|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print("\n".join(rows(Path(arg))))
