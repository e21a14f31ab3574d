"""Choosing an imputer and a regressor together for a table with missing values, per missing-data mechanism
(in the spirit of Extended MetaLIRS, Bahrpeyma et al., 2025).

Complete regression tables get missing values injected into their features under one of three mechanisms
(Rubin 1976), each cell of an affected column missing with probability ``rate`` on average:

* **MCAR** - every cell alike;
* **MAR** - more often in rows where another, fully observed column is high (its rank sets the odds);
* **MNAR** - more often where the cell's own value is high.

Every (imputer, regressor) pair of a fixed grid is scored by cross-validated RMSE (the imputer fitted inside
the pipeline, on training folds only), and the table is described by its meta-features plus statistics of
the missingness that a user's file shows. :func:`~learntolearn.automl.selection.leave_one_out` with
``groups`` then holds out every instance of a table at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from learntolearn.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MECHANISMS = ("MCAR", "MAR", "MNAR")
IMPUTERS = ("mean", "median", "knn", "iterative")
REGRESSORS = ("ridge", "random forest", "knn", "gradient boosting")
PAIRS = tuple((i, r) for i in IMPUTERS for r in REGRESSORS)
MIN_TARGET_VALUES = 20


def regression_tables(
    frames: Iterable[tuple[str, pd.DataFrame]], min_rows: int = 100
) -> tuple[list[tuple[str, NDArray[np.float64], NDArray[np.float64]]], dict[str, int]]:
    """Complete numeric regression tables: the target is the last numeric column with at least
    :data:`MIN_TARGET_VALUES` distinct values, the features the other numeric columns (at least two, none
    constant); rows with any missing value are dropped; tables equal in shape and target sum are copies."""
    counts = {"read": 0, "has_target": 0, "enough_rows_and_features": 0, "distinct": 0}
    tables, seen = [], set()
    for name, frame in frames:
        counts["read"] += 1
        numeric = frame.select_dtypes("number")
        numeric = numeric.loc[:, numeric.nunique() > 1]
        targets = [c for c in numeric.columns if numeric[c].nunique() >= MIN_TARGET_VALUES]
        if not targets:
            continue
        counts["has_target"] += 1
        complete = numeric.dropna()
        if len(complete) < min_rows or complete.shape[1] < 3 or complete.drop(columns=targets[-1]).nunique().min() < 2:
            continue
        counts["enough_rows_and_features"] += 1
        y = complete[targets[-1]].to_numpy(dtype=float)
        x = complete.drop(columns=targets[-1]).to_numpy(dtype=float)
        key = (x.shape, round(float(y.sum()), 6))
        if key in seen:
            continue
        seen.add(key)
        counts["distinct"] += 1
        tables.append((name, x, y))
    return tables, counts


def inject_missing(x: NDArray[np.float64], mechanism: str, rate: float, seed: int) -> NDArray[np.float64]:
    """A copy of ``x`` with cells removed under ``mechanism``; under MAR the first column drives the others'
    missingness and stays complete."""
    if mechanism not in MECHANISMS:
        raise DataError(f"unknown mechanism {mechanism!r}; choose from {', '.join(MECHANISMS)}")
    if not 0 < rate < 0.5:
        raise DataError(f"missing rate {rate} must be between 0 and 0.5")
    rng = np.random.default_rng(seed)
    n = len(x)

    def ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return (np.argsort(np.argsort(values, kind="stable"), kind="stable") + 0.5) / n  # in (0, 1), mean 1/2

    if mechanism == "MCAR":
        odds = np.full(x.shape, rate)
    elif mechanism == "MAR":
        odds = np.repeat((2 * rate * ranks(x[:, 0]))[:, None], x.shape[1], axis=1)
        odds[:, 0] = 0.0
    else:
        odds = 2 * rate * np.stack([ranks(column) for column in x.T], axis=1)
    out = x.astype(float, copy=True)
    out[rng.random(x.shape) < odds] = np.nan
    return out


def missingness_features(x: NDArray[np.float64]) -> dict[str, float]:
    """What a user's table shows of its missing values: how many, where, and how the missingness of one
    column relates to the observed values of the others (a trace of MAR)."""
    missing = np.isnan(x)
    observed_links = []
    for j in np.flatnonzero(missing.any(axis=0)):
        for k in np.flatnonzero(~missing.any(axis=0)):
            if np.std(x[:, k]) > 0:
                observed_links.append(abs(np.corrcoef(missing[:, j], x[:, k])[0, 1]))
    return {
        "missing_share": float(missing.mean()),
        "rows_with_missing_share": float(missing.any(axis=1).mean()),
        "columns_with_missing_share": float(missing.any(axis=0).mean()),
        "max_column_missing_share": float(missing.mean(axis=0).max()),
        "mean_link_to_observed": float(np.mean(observed_links)) if observed_links else 0.0,
        "max_link_to_observed": float(np.max(observed_links)) if observed_links else 0.0,
    }


def table_features(x: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, float]:
    """The table's own meta-features, from its observed cells (pairwise complete)."""
    import pandas as pd

    frame = pd.DataFrame(x)
    between = frame.corr().abs().to_numpy()
    off_diagonal = between[~np.eye(len(between), dtype=bool)]
    with_target = frame.corrwith(pd.Series(y)).abs()
    return {
        "log_rows": float(np.log(len(x))),
        "features": float(x.shape[1]),
        "mean_feature_correlation": float(np.nanmean(off_diagonal)) if off_diagonal.size else 0.0,
        "max_target_correlation": float(np.nanmax(with_target)) if with_target.notna().any() else 0.0,
        "mean_target_correlation": float(np.nanmean(with_target)) if with_target.notna().any() else 0.0,
        "mean_abs_skew": float(np.nanmean(np.abs(frame.skew().to_numpy()))),
        "target_skew": float(pd.Series(y).skew()),
    }


def pair_pipeline(imputer: str, regressor: str, seed: int = 0) -> Any:
    """Standardise, impute, regress (scikit-learn: the well-kept imputers, learners and pipelines)."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401 (registers IterativeImputer)
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    imputers = {
        "mean": lambda: SimpleImputer(strategy="mean"),
        "median": lambda: SimpleImputer(strategy="median"),
        "knn": lambda: KNNImputer(n_neighbors=5),
        "iterative": lambda: IterativeImputer(max_iter=10, random_state=seed),
    }
    regressors = {
        "ridge": lambda: Ridge(),
        "random forest": lambda: RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=1),
        "knn": lambda: KNeighborsRegressor(),
        "gradient boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
    }
    if imputer not in imputers or regressor not in regressors:
        raise DataError(f"unknown pair ({imputer!r}, {regressor!r}); imputers {IMPUTERS}, regressors {REGRESSORS}")
    return make_pipeline(StandardScaler(), imputers[imputer](), regressors[regressor]())


def score_pairs(x: NDArray[np.float64], y: NDArray[np.float64], folds: int = 3, seed: int = 0) -> list[float]:
    """Each pair's cross-validated RMSE on ``(x, y)`` divided by the target's standard deviation (so that
    tables compare), in :data:`PAIRS` order."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, cross_val_score

    splits = KFold(folds, shuffle=True, random_state=seed)
    scale = float(np.std(y)) or 1.0
    scores = []
    for imputer, regressor in PAIRS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mse = -cross_val_score(
                pair_pipeline(imputer, regressor, seed), x, y, cv=splits, scoring="neg_mean_squared_error"
            )
        scores.append(float(np.sqrt(mse.mean())) / scale)
    return scores
