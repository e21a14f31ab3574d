"""Algorithm selection from meta-features (Rice 1976; the ASlib protocol, Bischl et al., AIJ 2016).

A :class:`MetaDataset` holds how each learner of a fixed portfolio scored on each of many data sets
(higher is better) and each data set's meta-features. A selector is fitted on some data sets and picks
one learner for a data set it has not seen from its meta-features alone:

* :class:`SingleBest` - the learner with the best mean score on the training data sets (the baseline);
* :class:`NearestDatasets` - auto-sklearn 1.0's warm start (Feurer et al., NeurIPS 2015): the learner that
  did best on average over the ``k`` training data sets nearest in standardised meta-feature space;
* :class:`ScoreRegressor` - a random forest predicting every learner's score from the meta-features (one
  multi-output forest); the learner with the highest prediction.

:func:`leave_one_out` fits a selector on every data set but one and scores its choice on the one held out,
for each data set in turn, with ASlib's measures: the share of the single best's gap to the oracle that
is closed, how often the choice is the oracle's, and the regret in score points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from learntolearn.errors import DataError

Array = NDArray[np.float64]


@dataclass(frozen=True)
class MetaDataset:
    """``scores[d, l]``: learner ``l``'s score on data set ``d`` (complete); ``features[d]``: its meta-features
    (NaN where undefined, e.g. kurtosis of numeric attributes on a data set without any)."""

    datasets: tuple[str, ...]
    learners: tuple[str, ...]
    scores: Array
    features: Array
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.datasets), len(self.learners)):
            raise DataError(f"scores are {self.scores.shape}, expected {len(self.datasets)} x {len(self.learners)}")
        if self.features.shape != (len(self.datasets), len(self.feature_names)):
            raise DataError(
                f"features are {self.features.shape}, expected {len(self.datasets)} x {len(self.feature_names)}"
            )
        if np.isnan(self.scores).any():
            raise DataError("scores must be complete; decide how a failed run scores before building the meta-dataset")

    def subset(self, rows: NDArray[np.intp]) -> MetaDataset:
        return MetaDataset(
            tuple(self.datasets[i] for i in rows),
            self.learners,
            self.scores[rows],
            self.features[rows],
            self.feature_names,
        )


class Selector:
    """Fitted on training data sets' meta-features and scores, picks a learner index per new data set."""

    def fit(self, features: Array, scores: Array) -> Selector:
        raise NotImplementedError

    def select(self, features: Array) -> NDArray[np.intp]:
        raise NotImplementedError


class SingleBest(Selector):
    def fit(self, features: Array, scores: Array) -> SingleBest:
        self.best = int(np.argmax(scores.mean(axis=0)))
        return self

    def select(self, features: Array) -> NDArray[np.intp]:
        return np.full(len(features), self.best, dtype=np.intp)


class Standardiser:
    """Meta-features imputed with the training median and scaled to unit variance (training statistics only)."""

    def __init__(self, features: Array) -> None:
        with np.errstate(all="ignore"):
            self.median = np.nan_to_num(np.nanmedian(features, axis=0))
            filled = np.where(np.isnan(features), self.median, features)
            self.mean, self.scale = filled.mean(axis=0), filled.std(axis=0)
        self.scale[self.scale == 0] = 1.0

    def __call__(self, features: Array) -> Array:
        return (np.where(np.isnan(features), self.median, features) - self.mean) / self.scale


class NearestDatasets(Selector):
    def __init__(self, k: int = 5) -> None:
        self.k = k

    def fit(self, features: Array, scores: Array) -> NearestDatasets:
        self.standardise = Standardiser(features)
        self.known, self.scores = self.standardise(features), scores
        return self

    def neighbours(self, features: Array) -> tuple[NDArray[np.intp], Array]:
        """Per row: the ``k`` nearest training data sets (indices, nearest first) and their distances."""
        distances = np.linalg.norm(self.standardise(features)[:, None, :] - self.known[None], axis=-1)
        nearest = np.argsort(distances, axis=1, kind="stable")[:, : self.k]
        return nearest, np.take_along_axis(distances, nearest, axis=1)

    def predicted_scores(self, features: Array) -> Array:
        """Each learner's mean score over the nearest training data sets."""
        return self.scores[self.neighbours(features)[0]].mean(axis=1)

    def select(self, features: Array) -> NDArray[np.intp]:
        return np.argmax(self.predicted_scores(features), axis=1).astype(np.intp)


class ScoreRegressor(Selector):
    def __init__(self, trees: int = 100, seed: int = 0) -> None:
        self.trees, self.seed = trees, seed

    def fit(self, features: Array, scores: Array) -> ScoreRegressor:
        from sklearn.ensemble import RandomForestRegressor  # scikit-learn: the well-kept forest implementation

        self.standardise = Standardiser(features)
        self.forest = RandomForestRegressor(n_estimators=self.trees, random_state=self.seed, n_jobs=1)
        self.forest.fit(self.standardise(features), scores)
        return self

    def select(self, features: Array) -> NDArray[np.intp]:
        predicted = self.forest.predict(self.standardise(features)).reshape(len(features), -1)
        return np.argmax(predicted, axis=1).astype(np.intp)


@dataclass(frozen=True)
class Evaluation:
    """Per held-out data set: the chosen learner, its score, the oracle's and the single best's (fitted on the
    same training data sets); and ASlib's summaries."""

    chosen: NDArray[np.intp]
    score: Array
    oracle: Array
    single_best: Array

    @property
    def gap_closed(self) -> float:
        """(selector - single best) / (oracle - single best), of the means over data sets (1: the oracle)."""
        gap = self.oracle.mean() - self.single_best.mean()
        return float((self.score.mean() - self.single_best.mean()) / gap) if gap > 0 else float("nan")

    @property
    def top1(self) -> float:
        """Share of data sets where the chosen learner scores as the best one does."""
        return float(np.mean(self.score >= self.oracle))

    @property
    def regret(self) -> float:
        """Mean score points lost to the oracle."""
        return float(np.mean(self.oracle - self.score))

    def summary(self, selector: str) -> dict[str, float | str]:
        """One row of a selection table, scores in points: the mean, the paired difference to the single best
        with its 95% interval over data sets, and ASlib's measures."""
        from learntolearn.engine.evaluate import confidence_interval

        paired = self.score - self.single_best
        return {
            "selector": selector,
            "accuracy": round(100 * float(self.score.mean()), 2),
            "paired_vs_single_best": round(100 * float(paired.mean()), 2),
            "paired_ci95": round(100 * confidence_interval(torch.from_numpy(paired)), 2),
            "gap_closed": round(self.gap_closed, 3),
            "top1": round(self.top1, 3),
            "regret": round(100 * self.regret, 2),
        }


def markdown_table(rows: Sequence[dict[str, float | str]]) -> list[str]:
    """:meth:`Evaluation.summary` rows as a Markdown table."""
    lines = [
        "| selector | accuracy (%) | paired vs single best (95% CI) | gap closed | top-1 | regret (points) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['selector']} | {r['accuracy']:.2f} | {r['paired_vs_single_best']:+.2f} ± {r['paired_ci95']:.2f} | "
            f"{r['gap_closed']:.3f} | {r['top1']:.3f} | {r['regret']:.2f} |"
        )
    return lines


def leave_one_out(meta: MetaDataset, make: Callable[[], Selector], groups: Sequence[str] | None = None) -> Evaluation:
    """Each data set held out in turn: a fresh selector (and the single best) fitted on the others only. With
    ``groups`` (one per row, e.g. the table an instance was made from), every row of the held-out row's
    group is left out of the fit too."""
    n = len(meta.datasets)
    group = np.asarray(groups if groups is not None else range(n))
    if len(group) != n:
        raise DataError(f"{len(group)} groups for {n} data sets")
    if len(set(group.tolist())) < 2:
        raise DataError("leave-one-out needs at least two data sets (groups)")
    chosen, single = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
    for held in range(n):
        train = np.flatnonzero(group != group[held])
        features, scores = meta.features[train], meta.scores[train]
        chosen[held] = make().fit(features, scores).select(meta.features[held : held + 1])[0]
        single[held] = SingleBest().fit(features, scores).best
    rows = np.arange(n)
    return Evaluation(chosen, meta.scores[rows, chosen], meta.scores.max(axis=1), meta.scores[rows, single])
