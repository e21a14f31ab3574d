"""Our own meta-dataset: a portfolio of pipeline configurations scored on every table of a corpus, and each
table's meta-features, built resumably into one JSON file.

Each table is capped to ``max_rows`` rows (a stratified sample, seeded) so that the whole corpus fits a CPU
budget; every configuration is scored by stratified k-fold cross-validated accuracy on the same folds. A
configuration that fails on a table (e.g. a singular covariance) is recorded as failed and scored as the
majority class's share when the meta-dataset is read, as for LCDB. Meta-features: the 18 OpenML ones of
:func:`~learntolearn.automl.table.meta_features` and pymfe's general, statistical, information-theoretic
and landmarking groups (Alcobaça et al., JMLR 2020), summarised by mean and standard deviation.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learntolearn.automl.search import build, configuration
from learntolearn.automl.selection import MetaDataset, NearestDatasets
from learntolearn.automl.table import Table, meta_features
from learntolearn.errors import DataError
from learntolearn.files import write_json

PYMFE_GROUPS = ("general", "statistical", "info-theory", "landmarking")


def capped(table: Table, max_rows: int, seed: int) -> Table:
    """About ``max_rows`` rows, drawn per class in proportion (every class keeps at least two rows)."""
    if len(table.target) <= max_rows:
        return table
    rng = np.random.default_rng(seed)
    share = max_rows / len(table.target)
    keep: list[int] = []
    for _, rows in table.target.groupby(table.target).groups.items():
        rows = np.asarray(rows)
        keep += list(rng.choice(rows, size=max(2, round(share * len(rows))), replace=False))
    keep.sort()
    return Table(
        table.features.iloc[keep].reset_index(drop=True),
        table.target.iloc[keep].reset_index(drop=True),
        table.name,
        [*table.notes, f"capped to {len(keep)} of {len(table.target)} rows (stratified, seed {seed})"],
    )


def pymfe_features(table: Table, seed: int = 0) -> dict[str, float]:
    """pymfe's meta-features of the table (missing values imputed as for the learners; NaN where undefined)."""
    from pymfe.mfe import MFE  # pymfe: the well-kept meta-feature extractor

    frame = table.features.copy()
    for column in table.numeric:
        frame[column] = frame[column].fillna(frame[column].median())
    for column in table.categorical:
        frame[column] = frame[column].fillna("missing")
    extractor = MFE(groups=list(PYMFE_GROUPS), summary=["mean", "sd"], random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor.fit(
            frame.to_numpy(),
            table.target.to_numpy(),
            cat_cols=[frame.columns.get_loc(c) for c in table.categorical],
            transform_num=False,
            transform_cat="one-hot",
            suppress_warnings=True,
        )
        names, values = extractor.extract(suppress_warnings=True)
    return {f"pymfe.{n}": float(v) if v is not None and np.isfinite(v) else math.nan for n, v in zip(names, values)}


def score_configuration(table: Table, parameters: dict[str, Any], folds: int, seed: int) -> float | None:
    """Stratified ``folds``-fold cross-validated accuracy, or None when the pipeline fails on the table."""
    import optuna
    from numpy.linalg import LinAlgError
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    model = build(*configuration(optuna.trial.FixedTrial(parameters)), table)
    splits = StratifiedKFold(min(folds, int(table.target.value_counts().min())), shuffle=True, random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return float(cross_val_score(model, table.features, table.target, cv=splits, error_score="raise").mean())
    except (ValueError, LinAlgError, ArithmeticError):
        return None


def build_metadataset(
    tables: Sequence[Table],
    configurations: Sequence[dict[str, Any]],
    path: Path,
    max_rows: int = 1000,
    folds: int = 3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score every configuration on every table into ``path``, one table at a time (rewritten atomically after
    each, so an interrupted build resumes where it stopped); settings must match the file's."""
    settings = {"configurations": list(configurations), "max_rows": max_rows, "folds": folds, "seed": seed}
    record: dict[str, Any] = {"settings": settings, "tables": {}}
    if path.exists():
        record = json.loads(path.read_text())
        if record["settings"] != json.loads(json.dumps(settings)):
            raise DataError(f"{path} was built with other settings; pass another file or delete it to start over")
    for table in tables:
        if table.name in record["tables"]:
            continue
        started = time.process_time()
        small = capped(table, max_rows, seed)
        scores = [score_configuration(small, c, folds, seed) for c in configurations]
        record["tables"][table.name] = {
            "target": str(table.target.name),
            "rows": len(table.target),
            "rows_scored": len(small.target),
            "majority_share": float(small.target.value_counts().max() / len(small.target)),
            "scores": scores,
            "meta_features": {
                name: None if math.isnan(value) else value  # JSON has no NaN
                for name, value in {**meta_features(table), **pymfe_features(small, seed)}.items()
            },
            "cpu_seconds": round(time.process_time() - started, 2),
        }
        write_json(path, record)
        if log:
            best = max((s for s in scores if s is not None), default=math.nan)
            log(f"{table.name}: best {100 * best:.2f}% of {len(scores)} configurations")
    return record


def load_metadataset(record: dict[str, Any]) -> MetaDataset:
    """The built record as a :class:`MetaDataset` (failed configurations scored as the majority share;
    meta-features every table lacks are left out)."""
    tables = sorted(record["tables"])
    configurations = record["settings"]["configurations"]
    names = sorted({n for t in tables for n in record["tables"][t]["meta_features"]})
    scores, features = [], []
    for name in tables:
        entry = record["tables"][name]
        scores.append([entry["majority_share"] if s is None else s for s in entry["scores"]])
        features.append([entry["meta_features"].get(n) for n in names])
    values = np.array(features, dtype=float)  # None (undefined or absent) becomes NaN
    keep = ~np.all(np.isnan(values), axis=0)
    labels = tuple(json.dumps(c, sort_keys=True) for c in configurations)
    return MetaDataset(
        tuple(tables), labels, np.array(scores), values[:, keep], tuple(n for n, k in zip(names, keep) if k)
    )


def warm_start_for(record: dict[str, Any], held_out: str, count: int) -> list[dict[str, Any]]:
    """auto-sklearn 1.0's warm start for table ``held_out`` of the record: the best configuration of each of the
    other tables, nearest first in standardised meta-features, without repeats, ``count`` of them. The
    held-out table's own scores are never read."""
    if held_out not in record["tables"]:
        raise DataError(f"{held_out!r} is not in the meta-dataset")
    meta = load_metadataset(record)
    held = meta.datasets.index(held_out)
    others = np.delete(np.arange(len(meta.datasets)), held)
    selector = NearestDatasets(len(others)).fit(meta.features[others], meta.scores[others])
    order, _ = selector.neighbours(meta.features[held : held + 1])
    configurations = record["settings"]["configurations"]
    chosen: list[dict[str, Any]] = []
    for row in order[0]:
        best = configurations[int(np.argmax(meta.scores[others[row]]))]
        if best not in chosen:
            chosen.append(best)
        if len(chosen) == count:
            break
    return chosen
