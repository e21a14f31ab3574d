"""Algorithm selection: selectors find a planted rule, leave-one-out never sees the held-out data set's
results, ASlib's measures on a hand-worked case, LCDB read from its package files."""

import csv
import importlib.util

import numpy as np
import pytest

from learntolearn.automl import MetaDataset, NearestDatasets, ScoreRegressor, SingleBest, lcdb, leave_one_out
from learntolearn.automl.lcdb import final_scores
from learntolearn.errors import DataError


def planted(n: int = 60, seed: int = 0) -> MetaDataset:
    """Learner "a" wins where the first meta-feature is positive, "b" elsewhere; "c" is never best. The
    second feature is noise and some values are missing."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 2))
    positive = features[:, 0] > 0
    scores = np.stack([np.where(positive, 0.9, 0.7), np.where(positive, 0.75, 0.85), np.full(n, 0.6)], axis=1)
    scores += rng.normal(scale=0.01, size=scores.shape)
    features[rng.random(size=features.shape) < 0.05] = np.nan
    return MetaDataset(tuple(f"d{i}" for i in range(n)), ("a", "b", "c"), scores, features, ("signal", "noise"))


@pytest.mark.parametrize("make", [lambda: NearestDatasets(5), lambda: ScoreRegressor(trees=10)])
def test_selectors_learn_a_planted_rule_the_single_best_cannot(make):
    meta = planted(n=40)
    single, selector = leave_one_out(meta, SingleBest), leave_one_out(meta, make)
    assert single.gap_closed == pytest.approx(0.0, abs=0.05) and single.top1 < 0.7
    assert selector.gap_closed > 0.8 and selector.top1 > 0.85 and selector.regret < single.regret


def test_leave_one_out_never_sees_the_held_out_data_sets_own_scores():
    meta = planted()
    before = leave_one_out(meta, lambda: NearestDatasets(5)).chosen
    for held in (0, 7, 31):  # make "c" overwhelmingly best on one data set: only that data set's own choice could move
        scores = meta.scores.copy()
        scores[held, 2] = 10.0
        changed = MetaDataset(meta.datasets, meta.learners, scores, meta.features, meta.feature_names)
        after = leave_one_out(changed, lambda: NearestDatasets(5))
        assert after.chosen[held] == before[held], "the held-out data set's own result changed its recommendation"
        assert after.oracle[held] == 10.0


def test_aslib_measures_on_a_hand_worked_case():
    # four data sets, two learners; each data set's nearest neighbour in meta-feature space agrees with it
    scores = np.array([[0.9, 0.5], [0.4, 0.8], [0.9, 0.6], [0.3, 0.7]])
    meta = MetaDataset(("x", "y", "z", "w"), ("p", "q"), scores, np.array([[0.0], [5.0], [0.1], [5.1]]), ("f",))
    result = leave_one_out(meta, lambda: NearestDatasets(1))
    assert result.chosen.tolist() == [0, 1, 0, 1]
    # the single best of the other three: q without x (0.70 > 0.53), p without y, q without z, p without w
    np.testing.assert_allclose(result.single_best, [0.5, 0.4, 0.6, 0.3])
    assert result.gap_closed == pytest.approx(1.0) and result.top1 == 1.0 and result.regret == pytest.approx(0.0)
    single = leave_one_out(meta, SingleBest)
    assert single.gap_closed == pytest.approx(0.0) and single.top1 == 0.0 and single.regret == pytest.approx(0.375)


def test_a_meta_dataset_refuses_missing_scores_and_wrong_shapes():
    with pytest.raises(DataError, match="complete"):
        MetaDataset(("x",), ("p", "q"), np.array([[0.5, np.nan]]), np.zeros((1, 1)), ("f",))
    with pytest.raises(DataError, match="expected 1 x 2"):
        MetaDataset(("x",), ("p", "q"), np.zeros((1, 3)), np.zeros((1, 1)), ("f",))


def test_lcdb_final_scores_take_the_largest_common_size_and_score_failures_as_the_majority(tmp_path):
    header = ["openmlid", "learner", "size_train", "size_test", "outer_seed", "inner_seed", "traintime"]
    header += ["score_train", "score_valid", "score_test"]
    rows = [  # data set 1: "fast" reaches 64, "slow" only 32; "naive" never ran on it
        (1, "fast", 32, 0.70),
        (1, "fast", 32, 0.72),
        (1, "fast", 64, 0.80),
        (1, "slow", 32, 0.60),
        (2, "fast", 16, 0.50),
        (2, "slow", 16, 0.90),
        (2, "naive", 16, 0.55),
        (3, "fast", 16, 0.50),  # no meta-features: dropped
    ]
    with open(tmp_path / "database-accuracy.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for dataset, learner, size, score in rows:
            writer.writerow([dataset, learner, size, 10, 0, 0, 0.1, "", "", score])
    with open(tmp_path / "datasets.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["openmlid", "Name", "MajorityClassSize", "NumberOfInstances", "Skew"])
        writer.writerow([1, "one", 30, 100, ""])
        writer.writerow([2, "two", 50, 100, 1.5])
    meta, counts = final_scores(folder=tmp_path)
    assert meta.learners == ("fast", "naive", "slow") and meta.datasets == ("one (1)", "two (2)")
    np.testing.assert_allclose(meta.scores, [[0.71, 0.30, 0.60], [0.50, 0.55, 0.90]])
    assert np.isnan(meta.features[0, 2]) and meta.features[1, 2] == 1.5
    assert counts["kept"] == 2 and counts["learner_failures_scored_as_majority"] == 1
    assert counts["median_share_of_largest_training_size"] == pytest.approx(0.75)


def test_without_the_lcdb_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(lcdb.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install lcdb==0.1.0"):
        lcdb.lcdb_folder()


def test_the_installed_lcdb_files_hold_the_published_data_sets():
    if importlib.util.find_spec("lcdb") is None:
        pytest.skip("the lcdb package (LCDB's data) is not installed: pip install lcdb==0.1.0")
    features, names, feature_names = lcdb.read_meta_features()
    assert len(features) == 219 and len(feature_names) == 64 and names[3] == "kr-vs-kp"
