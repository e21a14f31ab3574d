"""Imputation + regression selection: the three mechanisms remove what they claim, the missingness statistics
see MAR, a model-based imputer wins where features predict each other, and grouped leave-one-out never fits
on another instance of the held-out table."""

import numpy as np
import pandas as pd
import pytest

from learntolearn.automl.imputation import (
    PAIRS,
    inject_missing,
    missingness_features,
    regression_tables,
    score_pairs,
)
from learntolearn.automl.selection import MetaDataset, Selector, SingleBest, leave_one_out
from learntolearn.errors import DataError


def correlated(rows: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(rows, 1))
    return np.concatenate([base, base + 0.2 * rng.normal(size=(rows, 3))], axis=1)


def test_mcar_removes_the_rate_everywhere():
    x = correlated()
    missing = np.isnan(inject_missing(x, "MCAR", 0.2, seed=1))
    assert missing.mean() == pytest.approx(0.2, abs=0.01)
    assert np.all(np.abs(missing.mean(axis=0) - 0.2) < 0.03)


def test_mar_follows_the_complete_first_column_and_mnar_the_values_themselves():
    x = correlated()
    mar = np.isnan(inject_missing(x, "MAR", 0.2, seed=1))
    assert not mar[:, 0].any() and mar[:, 1:].mean() == pytest.approx(0.2, abs=0.01)
    high = x[:, 0] > np.median(x[:, 0])
    assert mar[high, 1:].mean() > 2.5 * mar[~high, 1:].mean()  # odds 1.5r against 0.5r
    mnar = inject_missing(x, "MNAR", 0.2, seed=1)
    gone = np.isnan(mnar)
    assert gone.mean() == pytest.approx(0.2, abs=0.01)
    assert x[gone].mean() > x[~gone].mean() + 0.5


def test_bad_mechanisms_and_rates_name_the_choices():
    with pytest.raises(DataError, match="MCAR, MAR, MNAR"):
        inject_missing(correlated(10), "random", 0.1, seed=0)
    with pytest.raises(DataError, match="between 0 and 0.5"):
        inject_missing(correlated(10), "MCAR", 0.7, seed=0)


def test_the_missingness_statistics_see_mar_but_not_mcar():
    x = correlated()
    mar = missingness_features(inject_missing(x, "MAR", 0.2, seed=1))
    mcar = missingness_features(inject_missing(x, "MCAR", 0.2, seed=1))
    assert mar["mean_link_to_observed"] > 0.2 > mcar["max_link_to_observed"] + 0.1
    assert mcar["columns_with_missing_share"] == 1.0 and mar["columns_with_missing_share"] == 0.75


@pytest.mark.slow
def test_a_model_based_imputer_wins_where_the_features_predict_each_other():
    x = correlated(300)
    y = x[:, 1:].sum(axis=1)
    scores = dict(zip(PAIRS, score_pairs(inject_missing(x, "MCAR", 0.3, seed=2), y)))
    assert len(scores) == 16 and all(s > 0 for s in scores.values())
    assert scores["iterative", "ridge"] < 0.7 * scores["mean", "ridge"]


def test_regression_tables_follow_the_stated_rule_and_count_each_step():
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150), "kind": "k", "y": rng.normal(size=150)})
    good.loc[:4, "a"] = np.nan  # five incomplete rows are dropped
    frames = [
        ("p/good", good),
        ("p/copy", good.copy()),
        ("p/few", good.head(60)),
        ("p/counts", pd.DataFrame({"a": rng.integers(0, 5, 200), "b": rng.integers(0, 3, 200)})),
    ]
    tables, counts = regression_tables(frames)
    assert counts == {"read": 4, "has_target": 3, "enough_rows_and_features": 2, "distinct": 1}
    ((name, x, y),) = tables
    assert name == "p/good" and x.shape == (145, 2) and np.array_equal(y, good["y"].to_numpy()[5:])


FITTED: list[set[float]] = []  # the row markers each fit saw


class Recording(Selector):
    def fit(self, features, scores):
        FITTED.append(set(features[:, 0].tolist()))
        return self

    def select(self, features):
        return np.zeros(len(features), dtype=np.intp)


def test_grouped_leave_one_out_holds_out_every_instance_of_a_table():
    groups = ["t0", "t0", "t0", "t1", "t1", "t2"]
    meta = MetaDataset(
        tuple(f"{g}/{i}" for i, g in enumerate(groups)),
        ("a", "b"),
        np.tile([0.5, 0.6], (6, 1)),
        np.arange(6, dtype=float)[:, None],
        ("row",),
    )
    FITTED.clear()
    leave_one_out(meta, Recording, groups=groups)
    assert FITTED[0] == {3.0, 4.0, 5.0} and FITTED[3] == {0.0, 1.0, 2.0, 5.0}
    with pytest.raises(DataError, match="6 groups|groups for"):
        leave_one_out(meta, SingleBest, groups=groups[:5])
