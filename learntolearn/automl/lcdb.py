"""LCDB 1.0 (Mohr et al., 2022), read from the CSV files that ship inside the ``lcdb`` package.

The package's own code imports ``openml``, which downloads; this module only locates the package folder
and reads ``database-<metric>.csv`` (learning curves of 20 scikit-learn learners on OpenML data sets:
test scores at growing training sizes, several seeds) and ``datasets.csv`` (OpenML's meta-features).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from learntolearn.automl.selection import MetaDataset
from learntolearn.errors import DataError
from learntolearn.files import write_json

METRICS = ("accuracy", "auc", "f1", "logloss")


def lcdb_folder() -> Path:
    """The installed ``lcdb`` package's folder (found without importing it)."""
    spec = importlib.util.find_spec("lcdb")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("LCDB's data ships in the lcdb package: pip install lcdb==0.1.0 (its code is never imported)")
    return Path(next(iter(spec.submodule_search_locations)))


def read_curves(metric: str = "accuracy", folder: Path | None = None) -> dict[tuple[int, str], dict[int, list[float]]]:
    """``(OpenML id, learner) -> training size -> test scores`` (one per seed pair)."""
    if metric not in METRICS:
        raise DataError(f"unknown LCDB metric {metric!r}; choose from {', '.join(METRICS)}")
    path = (folder or lcdb_folder()) / f"database-{metric}.csv"
    curves: dict[tuple[int, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as handle:
        rows = csv.DictReader(handle)
        for row in rows:
            if row["score_test"]:
                curves[int(row["openmlid"]), row["learner"]][int(row["size_train"])].append(float(row["score_test"]))
    return curves


def read_meta_features(folder: Path | None = None) -> tuple[dict[int, list[float]], dict[int, str], tuple[str, ...]]:
    """OpenML meta-features per data set (NaN where empty), data set names, and the feature names."""
    with open((folder or lcdb_folder()) / "datasets.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = tuple(k for k in rows[0] if k not in ("openmlid", "Name"))
    values = {int(r["openmlid"]): [float(r[k]) if r[k] else math.nan for k in names] for r in rows}
    return values, {int(r["openmlid"]): r["Name"] for r in rows}, names


def final_scores(metric: str = "accuracy", folder: Path | None = None) -> tuple[MetaDataset, dict[str, float]]:
    """The meta-dataset of the learners' accuracies at the largest training size that every learner with a
    curve on a data set reached there (mean over seeds), and counts of what survived.

    A learner with no curve at all on a data set (it failed there, e.g. multinomial naive Bayes on negative
    features) scores the majority class's share, what a user falls back to. Only accuracy is supported,
    since only there is that fallback defined."""
    if metric != "accuracy":
        raise DataError("final_scores scores failed learners as the majority class, which is defined for accuracy only")
    curves = read_curves(metric, folder)
    features, names, feature_names = read_meta_features(folder)
    learners = tuple(sorted({learner for _, learner in curves}))
    index = feature_names.index
    datasets, scores, rows, shares = [], [], [], []
    for dataset in sorted({d for d, _ in curves}):
        if dataset not in features:
            continue
        present = [learner for learner in learners if (dataset, learner) in curves]
        common = set.intersection(*(set(curves[dataset, learner]) for learner in present))
        if not common:
            continue
        anchor = max(common)
        shares.append(anchor / max(max(curves[dataset, learner]) for learner in present))
        majority = features[dataset][index("MajorityClassSize")] / features[dataset][index("NumberOfInstances")]
        row = [
            float(np.mean(curves[dataset, learner][anchor])) if learner in present else majority for learner in learners
        ]
        datasets.append(f"{names[dataset]} ({dataset})")
        scores.append(row)
        rows.append(features[dataset])
    counts = {
        "datasets_with_curves": len({d for d, _ in curves}),
        "with_meta_features": sum(d in features for d in {d for d, _ in curves}),
        "kept": len(datasets),
        "median_share_of_largest_training_size": float(np.median(shares)) if shares else math.nan,
        "learner_failures_scored_as_majority": sum(
            (d, learner) not in curves for d in {d for d, _ in curves} if d in features for learner in learners
        ),
    }
    meta = MetaDataset(tuple(datasets), learners, np.array(scores), np.array(rows), feature_names)
    return meta, counts


def cached_final_scores(folder: Path | None = None, cache: Path | None = None) -> MetaDataset:
    """:func:`final_scores` for accuracy, kept in ``cache`` (default: the per-user cache folder) and rebuilt
    when LCDB's files change (their sizes and modification times are the key)."""
    from learntolearn.data.roots import default_cache_root

    folder = folder or lcdb_folder()
    sources = [folder / "database-accuracy.csv", folder / "datasets.csv"]
    key = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sources]
    path = cache or default_cache_root() / "automl" / "lcdb-final-accuracy.json"
    if path.exists():
        try:
            stored = json.loads(path.read_text())
            if stored["key"] == key:
                return MetaDataset(
                    tuple(stored["datasets"]),
                    tuple(stored["learners"]),
                    np.array(stored["scores"], dtype=float),
                    np.array(stored["features"], dtype=float),
                    tuple(stored["feature_names"]),
                )
        except (ValueError, KeyError, TypeError):
            pass  # a damaged or older cache is rebuilt
    meta, _ = final_scores("accuracy", folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    features = [[None if math.isnan(v) else v for v in row] for row in meta.features.tolist()]
    write_json(
        path,
        {
            "key": key,
            "datasets": meta.datasets,
            "learners": meta.learners,
            "scores": meta.scores.tolist(),
            "features": features,
            "feature_names": meta.feature_names,
        },
    )
    return meta
