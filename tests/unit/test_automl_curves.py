"""Learning-curve extrapolation: the parametric families recover their own curves, the meta-learned model finds
a planted cross-data-set regularity the others cannot, and the folds never let a held-out data set's curves in."""

import numpy as np
import pytest

from learntolearn.automl.curves import (
    Curve,
    CurveRegressor,
    Extrapolator,
    LastValue,
    ParametricFit,
    curves_from_table,
    extrapolation_errors,
    log_power,
    pow3,
)
from learntolearn.errors import DataError

SIZES = 16 * 2 ** (np.arange(12) / 2)  # LCDB's anchors: 16, 23, 32, 45, ...


@pytest.mark.parametrize(
    "family, curve",
    [("pow3", lambda x: pow3(x, 0.9, -0.4, 0.7)), ("log_power", lambda x: log_power(x, 0.95, 1.0, -0.8))],
)
def test_a_family_fitted_to_five_anchors_of_its_own_curve_predicts_the_final_score(family, curve):
    scores = curve(SIZES / SIZES[0])
    exact = Curve("d", "l", SIZES, scores)
    predicted = ParametricFit(family).predict([exact], observed=5)[0]
    assert predicted == pytest.approx(scores[-1], abs=1e-3)
    assert abs(LastValue().predict([exact], 5)[0] - scores[-1]) > 0.05  # far from flat: extrapolation mattered


def test_parametric_predictions_are_clipped_to_shares():
    steep = Curve("d", "l", SIZES, np.minimum(0.2 + 0.1 * np.arange(12), 1.0))
    assert 0.0 <= ParametricFit("pow3").predict([steep], observed=4)[0] <= 1.0


def planted_curves(datasets: int = 30, seed: int = 0) -> list[Curve]:
    """Two learners with the same pow3 shapes up to the observed anchors; learner "late" gains 0.15 at its
    final anchor on every data set, which no single curve reveals but other data sets do."""
    rng = np.random.default_rng(seed)
    curves = []
    for d in range(datasets):
        for learner in ("smooth", "late"):
            scores = pow3(SIZES / SIZES[0], rng.uniform(0.6, 0.8), -0.3, rng.uniform(0.3, 1.0))
            scores = scores + rng.normal(scale=0.002, size=len(SIZES))
            if learner == "late":
                scores[-1] += 0.15
            curves.append(Curve(f"d{d}", learner, SIZES, scores))
    return curves


def test_the_meta_learned_model_finds_what_only_other_data_sets_show():
    methods = {"last": LastValue, "pow3": lambda: ParametricFit("pow3"), "forest": lambda: CurveRegressor(50)}
    usable, errors = extrapolation_errors(planted_curves(), observed=5, methods=methods, folds=5)
    late = np.array([c.learner == "late" for c in usable])
    assert errors["forest"][late].mean() < 0.03
    assert errors["pow3"][late].mean() > 0.1 and errors["last"][late].mean() > 0.1


CALLS: list[tuple[set[str], set[str]]] = []  # (data sets fitted on, data sets predicted) per fold


class Recorder(Extrapolator):
    def fit(self, curves, observed):
        self.seen = {c.dataset for c in curves}
        return self

    def predict(self, curves, observed):
        CALLS.append((self.seen, {c.dataset for c in curves}))
        return LastValue().predict(curves, observed)


def test_folds_keep_every_held_out_data_sets_curves_out_of_fitting():
    CALLS.clear()
    curves = planted_curves(datasets=12)
    usable, errors = extrapolation_errors(curves, observed=3, methods={"recorder": Recorder}, folds=4, seed=3)
    assert len(CALLS) == 4
    for seen, predicted in CALLS:
        assert seen and predicted and not seen & predicted
    assert set().union(*(p for _, p in CALLS)) == {c.dataset for c in curves}
    assert len(usable) == len(curves) and not np.isnan(errors["recorder"]).any()


def test_curves_too_short_to_extrapolate_are_left_out():
    short = Curve("s", "l", SIZES[:4], np.full(4, 0.5))
    usable, _ = extrapolation_errors([short, *planted_curves(4)], observed=4, methods={"last": LastValue}, folds=2)
    assert short not in usable and len(usable) == 8


def test_curves_from_a_table_average_seeds_in_size_order():
    (curve,) = curves_from_table({(7, "svc"): {32: [0.5, 0.7], 16: [0.4]}, (8, "svc"): {16: [0.1]}})
    assert curve.dataset == "7" and list(curve.sizes) == [16, 32] and list(curve.scores) == pytest.approx([0.4, 0.6])


def test_bad_requests_name_the_problem():
    with pytest.raises(DataError, match="increase"):
        Curve("d", "l", np.array([16.0, 16.0]), np.array([0.1, 0.2]))
    with pytest.raises(DataError, match="unknown curve family"):
        ParametricFit("cubic")
    with pytest.raises(DataError, match="at least two anchors"):
        extrapolation_errors(planted_curves(4), observed=1, methods={"last": LastValue})
    with pytest.raises(DataError, match="folds"):
        extrapolation_errors(planted_curves(4), observed=3, methods={"last": LastValue}, folds=5)
    with pytest.raises(DataError, match="more than 12 anchors"):
        extrapolation_errors(planted_curves(4), observed=12, methods={"last": LastValue})
