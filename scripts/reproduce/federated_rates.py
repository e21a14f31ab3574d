"""Choose each federated algorithm's rates on one federation from short runs scored only on the training
clients' own held-out examples (federated evaluation), never on the held-out clients.

    python scripts/reproduce/federated_rates.py --data clinc150 --rounds 20 --workers 2
    python scripts/reproduce/federated_rates.py --data fashion --grid inner_lr=0.03,0.1,0.4,1   (vary one rate only)

Writes results/federated-DATA-rates-Nrounds.json: every setting tried, its training clients' accuracy after
the last round (None where the run diverged), the best setting per algorithm, and provenance. A rerun with the same
rounds reuses the settings already in that file (simulations are deterministic) and runs only new ones. The chosen rates are then
written into ``learntolearn.federated.runs.RATES`` by hand, citing this file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from learntolearn.engine.provenance import provenance
from learntolearn.federated.app import simulate
from learntolearn.federated.local import ALGORITHMS
from learntolearn.federated.runs import preset
from learntolearn.files import write_json

ROOT = Path(__file__).resolve().parents[2]
FEDAVG = {"lr": [0.03, 0.1, 0.3]}
PERSONALISED = {"lr": [0.03, 0.1, 0.3], "inner_lr": [0.1, 0.4, 1.0, 2.0]}
GRIDS: dict[str, dict[str, list[float]]] = {
    "fedavg": FEDAVG,
    "fedavg-ft": PERSONALISED,
    "per-fedavg-fo": PERSONALISED,
    "per-fedavg-hf": PERSONALISED,
    "fedmeta-maml": {"meta_lr": [0.1, 0.3, 1.0, 3.0], "inner_lr": [0.1, 0.4, 1.0, 2.0]},
    "fedmeta-protonet": {"meta_lr": [0.03, 0.1, 0.25, 1.0, 3.0]},
}


def settings(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["omniglot", "clinc150", "fashion"], required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="RATE=V1,V2",
        help="Vary only these rates over these values (the others stay at the presets'); algorithms without them "
        "are skipped.",
    )
    args = parser.parse_args()
    override = {k: [float(v) for v in values.split(",")] for k, values in (g.split("=", 1) for g in args.grid)}
    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.CRITICAL)
    path = args.out / f"federated-{args.data}-rates-{args.rounds}rounds.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    tried: dict[str, list[dict[str, Any]]] = {}
    for algorithm, entries in earlier.get("tried", {}).items():  # every entry keyed by all three rates
        tried[algorithm] = [{**t, "rates": full_rates(algorithm, args.data, t["rates"])} for t in entries]
    for algorithm in args.algorithms:
        grid = {k: override[k] for k in GRIDS[algorithm] if k in override} if override else GRIDS[algorithm]
        if not grid:
            continue
        entries = tried.setdefault(algorithm, [])
        for rates in settings(grid):
            rates = full_rates(algorithm, args.data, rates)
            if any(t["rates"] == rates for t in entries):
                continue
            config = replace(preset(f"{algorithm}-{args.data}", rounds=args.rounds), eval_every=args.rounds, **rates)
            with tempfile.TemporaryDirectory() as folder:
                state = simulate(
                    config, Path(folder), args.data_root, workers=args.workers, log=lambda _: None, score_held_out=False
                )
            last = state["history"][-1]
            trained = last.get("training_clients") or {}
            accuracy = trained.get("accuracy") if last["failures"] == 0 else None
            if accuracy is not None and accuracy != accuracy:  # nan: a client diverged
                accuracy = None
            entries.append({"rates": rates, "training_clients_accuracy": accuracy})
            print(f"{algorithm} {rates}: {accuracy}", flush=True)
            write_json(path, {"rounds": args.rounds, "tried": tried, "provenance": provenance()})
    best = {}
    for algorithm, entries in tried.items():
        scored = [t for t in entries if t["training_clients_accuracy"] is not None]
        if scored:
            best[algorithm] = max(scored, key=lambda t: t["training_clients_accuracy"])
    write_json(path, {"rounds": args.rounds, "tried": tried, "best": best, "provenance": provenance()})
    for algorithm, choice in best.items():
        print(f"best {algorithm}: {choice['rates']} ({100 * choice['training_clients_accuracy']:.1f}%)")


def full_rates(algorithm: str, data: str, rates: dict[str, float]) -> dict[str, float]:
    """``rates`` completed with the preset's values of the others, so that probes compare across reruns."""
    config = replace(preset(f"{algorithm}-{data}"), **rates)
    return {name: getattr(config, name) for name in ("lr", "inner_lr", "meta_lr")}


if __name__ == "__main__":
    main()
