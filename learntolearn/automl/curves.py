"""Learning-curve extrapolation: a learner's score at the full training size from the first anchors of its curve.

Early stopping in model selection rests on this: if the score on a few small training sizes predicts the
score on all the data, hopeless candidates can be dropped cheaply. Three kinds of predictor:

* :class:`LastValue` - the last observed score (the curve is assumed flat from there);
* :class:`ParametricFit` - a curve family fitted by least squares to the observed anchors and read at the
  final size: ``pow3`` ``a + b x^-c`` and ``log_power`` ``a / (1 + (x / e^b)^c)`` (Domhan et al., IJCAI 2015;
  both among the families fitted to LCDB in Mohr et al., 2022);
* :class:`CurveRegressor` - meta-learned across data sets: a random forest mapping the observed anchors,
  the distance to the final size, the learner and the parametric fits to the final score's change from the
  last observation, trained on other data sets' curves only.

:func:`extrapolation_errors` scores them with data sets split into folds, so that no curve of a held-out
data set (of any learner) is seen when fitting the meta-learned model.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from learntolearn.errors import DataError

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """One learner's test scores on one data set at increasing training sizes (mean over seeds)."""

    dataset: str
    learner: str
    sizes: Array
    scores: Array

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.scores) or len(self.sizes) < 2:
            raise DataError(f"curve {self.dataset}/{self.learner}: needs matching sizes and scores, at least two")
        if np.any(np.diff(self.sizes) <= 0):
            raise DataError(f"curve {self.dataset}/{self.learner}: training sizes must increase")

    @property
    def final(self) -> float:
        return float(self.scores[-1])


def curves_from_table(table: dict[tuple[str, str], dict[int, list[float]]]) -> list[Curve]:
    """Curves from ``(data set, learner) -> training size -> scores`` (as :func:`lcdb.read_curves` returns)."""
    curves = []
    for (dataset, learner), by_size in sorted(table.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        sizes = sorted(by_size)
        if len(sizes) >= 2:
            scores = [float(np.mean(by_size[s])) for s in sizes]
            curves.append(Curve(str(dataset), learner, np.array(sizes, dtype=float), np.array(scores)))
    return curves


def pow3(x: Array, a: float, b: float, c: float) -> Array:
    return a + b * x ** (-c)


def log_power(x: Array, a: float, b: float, c: float) -> Array:
    return a / (1.0 + (x / np.exp(b)) ** c)


#: family -> (function, start from (first, last observed score), lower bounds, upper bounds); x is the
#: training size divided by the first anchor's, so that the bounds do not depend on the data set's size
FAMILIES: dict[str, tuple[Callable[..., Array], Callable[[float, float], list[float]], list[float], list[float]]] = {
    "pow3": (pow3, lambda first, last: [last, first - last, 0.5], [-1.0, -10.0, 0.0], [2.0, 10.0, 5.0]),
    "log_power": (log_power, lambda first, last: [last, 0.0, -0.5], [0.0, -20.0, -5.0], [2.0, 20.0, 5.0]),
}


class Extrapolator:
    """Predicts each curve's final score from its first ``observed`` anchors."""

    def fit(self, curves: Sequence[Curve], observed: int) -> Extrapolator:
        return self

    def predict(self, curves: Sequence[Curve], observed: int) -> Array:
        raise NotImplementedError


class LastValue(Extrapolator):
    def predict(self, curves: Sequence[Curve], observed: int) -> Array:
        return np.array([c.scores[observed - 1] for c in curves])


class ParametricFit(Extrapolator):
    """Least-squares fit of one family to the observed anchors; falls back to the last value when the fit
    fails, and clips to [0, 1] (scores are shares)."""

    def __init__(self, family: str) -> None:
        if family not in FAMILIES:
            raise DataError(f"unknown curve family {family!r}; choose from {', '.join(FAMILIES)}")
        self.family = family

    def predict(self, curves: Sequence[Curve], observed: int) -> Array:
        return np.array(
            [
                fit_family(self.family, tuple(c.sizes[:observed]), tuple(c.scores[:observed]), c.sizes[-1])
                for c in curves
            ]
        )


@functools.lru_cache(maxsize=200_000)
def fit_family(family: str, sizes: tuple[float, ...], scores: tuple[float, ...], at: float) -> float:
    """``family`` fitted to ``(sizes, scores)`` and read at size ``at`` (memoised: fits are deterministic and
    the cross-validation folds ask for the same ones again)."""
    from scipy.optimize import curve_fit  # SciPy: the well-kept bounded least-squares fitter

    function, start, lower, upper = FAMILIES[family]
    x, y = np.array(sizes) / sizes[0], np.array(scores)
    initial = np.clip(start(scores[0], scores[-1]), np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parameters, _ = curve_fit(function, x, y, p0=initial, bounds=(lower, upper), maxfev=2000)
        value = float(function(np.array([at / sizes[0]]), *parameters)[0])
    except (RuntimeError, ValueError, FloatingPointError):
        return scores[-1]
    return float(np.clip(value, 0.0, 1.0)) if np.isfinite(value) else scores[-1]


class CurveRegressor(Extrapolator):
    """A random forest from a curve's observed anchors to its final score's change from the last observation."""

    def __init__(self, trees: int = 200, seed: int = 0) -> None:
        self.trees, self.seed = trees, seed
        self.fits = [ParametricFit(family) for family in FAMILIES]

    def features(self, curves: Sequence[Curve], observed: int) -> Array:
        last = LastValue().predict(curves, observed)
        fitted = np.stack([fit.predict(curves, observed) for fit in self.fits], axis=1) - last[:, None]
        shape = np.array(
            [
                [*c.scores[:observed], np.log2(c.sizes[-1] / c.sizes[observed - 1]), np.log2(c.sizes[observed - 1])]
                for c in curves
            ]
        )
        learner = np.array([[c.learner == name for name in self.learners] for c in curves], dtype=float)
        return np.concatenate([shape, fitted, learner], axis=1)

    def fit(self, curves: Sequence[Curve], observed: int) -> CurveRegressor:
        from sklearn.ensemble import RandomForestRegressor  # scikit-learn: the well-kept forest implementation

        self.learners = sorted({c.learner for c in curves})
        target = np.array([c.final for c in curves]) - LastValue().predict(curves, observed)
        self.forest = RandomForestRegressor(self.trees, min_samples_leaf=5, random_state=self.seed, n_jobs=1)
        self.forest.fit(self.features(curves, observed), target)
        return self

    def predict(self, curves: Sequence[Curve], observed: int) -> Array:
        change = self.forest.predict(self.features(curves, observed))
        return np.clip(LastValue().predict(curves, observed) + change, 0.0, 1.0)


def dataset_folds(datasets: Sequence[str], folds: int, seed: int) -> list[set[str]]:
    """The distinct data sets shuffled by ``seed`` and dealt into ``folds`` groups."""
    names = sorted(set(datasets))
    if folds < 2 or folds > len(names):
        raise DataError(f"need 2 <= folds <= {len(names)} data sets, got {folds}")
    order = np.random.default_rng(seed).permutation(len(names))
    return [{names[i] for i in part} for part in np.array_split(order, folds)]


def extrapolation_errors(
    curves: Sequence[Curve],
    observed: int,
    methods: dict[str, Callable[[], Extrapolator]],
    folds: int = 10,
    seed: int = 0,
) -> tuple[list[Curve], dict[str, Array]]:
    """Absolute errors of each method's final-score prediction, on every curve with more than ``observed``
    anchors. Each method is fitted per fold on the curves of the other folds' data sets and predicts the
    held-out fold's curves."""
    if observed < 2:
        raise DataError("observe at least two anchors")
    usable = [c for c in curves if len(c.sizes) > observed]
    if not usable:
        raise DataError(f"no curve has more than {observed} anchors")
    errors = {name: np.full(len(usable), np.nan) for name in methods}
    for held in dataset_folds([c.dataset for c in usable], folds, seed):
        test = [i for i, c in enumerate(usable) if c.dataset in held]
        train = [c for c in usable if c.dataset not in held]
        targets = np.array([usable[i].final for i in test])
        for name, make in methods.items():
            predicted = make().fit(train, observed).predict([usable[i] for i in test], observed)
            errors[name][test] = np.abs(predicted - targets)
    return usable, errors
