"""Which learners to try on a new table: the ones that did best on the LCDB data sets most like it.

The new table is described by the OpenML meta-features that :func:`~learntolearn.automl.table.meta_features`
computes from the file itself (counts on a log scale, so that a data set ten times larger is as far as one
ten times smaller); auto-sklearn 1.0's warm start (:class:`NearestDatasets`) ranks LCDB's learners by their
mean accuracy over the ``k`` nearest LCDB data sets. ``scripts/reproduce/automl_selection.py`` scores
exactly this recommender leave-one-data-set-out on LCDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learntolearn.automl.lcdb import cached_final_scores
from learntolearn.automl.selection import MetaDataset, NearestDatasets
from learntolearn.automl.table import META_FEATURES

#: meta-features compared on a log scale
LOG_SCALED = frozenset(name for name in META_FEATURES if name.startswith("NumberOf") or name.endswith("ClassSize"))


def comparable(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Meta-feature rows with the counts log-scaled."""
    scaled = np.array(values, dtype=float)
    for i, name in enumerate(names):
        if name in LOG_SCALED:
            scaled[..., i] = np.log1p(scaled[..., i])
    return scaled


def reference_meta_dataset(folder: Path | None = None) -> MetaDataset:
    """LCDB's accuracies with only the meta-features a user's file gives, log-scaled as :func:`comparable`."""
    meta = cached_final_scores(folder)
    columns = [meta.feature_names.index(name) for name in META_FEATURES]
    return MetaDataset(
        meta.datasets, meta.learners, meta.scores, comparable(meta.features[:, columns], META_FEATURES), META_FEATURES
    )


@dataclass(frozen=True)
class Recommendation:
    """Learners best first with their mean accuracy over the nearest LCDB data sets, and those data sets."""

    learners: list[tuple[str, float]]
    nearest: list[tuple[str, float]]


def recommend(features: dict[str, float], k: int = 5, reference: MetaDataset | None = None) -> Recommendation:
    """Rank LCDB's learners for a table with these meta-features (as :func:`meta_features` returns)."""
    meta = reference or reference_meta_dataset()
    row = comparable(np.array([[features[name] for name in META_FEATURES]]), META_FEATURES)
    selector = NearestDatasets(k).fit(meta.features, meta.scores)
    predicted = selector.predicted_scores(row)[0]
    order = np.argsort(-predicted, kind="stable")
    nearest, distances = selector.neighbours(row)
    return Recommendation(
        [(meta.learners[i], float(predicted[i])) for i in order],
        [(meta.datasets[i], float(d)) for i, d in zip(nearest[0], distances[0])],
    )
