"""`ltl automl recommend`: a user's CSV read with every change reported and one clear error for what cannot
work, OpenML's meta-feature definitions on a hand-worked table, the nearest-data-sets ranking, and the CLI."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from learntolearn.automl import recommend as recommend_module
from learntolearn.automl.pipelines import LEARNERS, describe, pipeline
from learntolearn.automl.recommend import comparable, recommend
from learntolearn.automl.selection import MetaDataset
from learntolearn.automl.table import META_FEATURES, meta_features, read_table
from learntolearn.cli.main import cli
from learntolearn.errors import DataError, UnknownNameError


def write(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def ordinary(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """A table as users have them: a row id, numbers with gaps, a category, free text, a mostly numeric
    column with stray strings, a constant column, and a few rows without a label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + rows),
            "x": np.where(rng.random(rows) < 0.1, np.nan, x),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "comment": [f"customer wrote a long remark about order {i}" for i in range(rows)],
            "weight": [str(round(v, 2)) if i % 40 else "?" for i, v in enumerate(rng.normal(70, 5, size=rows))],
            "site": "A",
            "label": np.where(x > 0, "yes", "no"),
        }
    )
    frame.loc[[3, rows // 2 - 10], "label"] = np.nan
    return frame


def test_an_ordinary_table_is_cleaned_and_every_change_reported(tmp_path):
    table = read_table(write(tmp_path, ordinary()), "label")
    assert list(table.features.columns) == ["x", "colour", "weight"]
    assert table.numeric == ["x", "weight"] and table.categorical == ["colour"]
    assert len(table.target) == 118 and set(table.target) == {"yes", "no"}
    notes = " | ".join(table.notes)
    for expected in ("dropped 2 rows without a 'label'", "'id': a row identifier", "'comment'", "'site': constant"):
        assert expected in notes
    assert "'weight': 3 non-numeric values" in notes and table.features["weight"].isna().sum() == 3


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(label="yes"), "single value"),
        (lambda f: f.assign(label=np.linspace(0.1, 99.7, len(f))), "regression target"),
        (lambda f: f.assign(label=np.arange(len(f))), "more than 100 classes"),
        (lambda f: f.assign(label=["rare"] + ["common", "other"] * ((len(f) - 1) // 2) + ["x"]), "occur only once"),
        (lambda f: f[["id", "comment", "site", "label"]], "no usable feature column"),
        (lambda f: f.assign(label=np.nan), "is empty"),
    ],
)
def test_targets_and_tables_that_cannot_work_get_one_clear_error(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path, change(ordinary())), "label")


def test_a_missing_column_names_the_columns_and_a_large_file_its_size(tmp_path):
    path = write(tmp_path, ordinary())
    with pytest.raises(DataError, match="no column 'class'; its columns are: id, x, colour"):
        read_table(path, "class")
    with pytest.raises(DataError, match=r"MiB, more than the 0 MiB .*--max-megabytes"):
        read_table(path, "label", max_bytes=100)
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "absent.csv", "label")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    with pytest.raises(DataError, match="not a readable CSV"):
        read_table(tmp_path / "binary.csv", "label")


def test_meta_features_follow_openml_on_a_hand_worked_table(tmp_path):
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, np.nan, 4.0, 5.0, 5.0, 1.5, 2.5],
            "b": ["u", "v", "u", None, "u", "v", "u", "v"],
            "c": [0, 1, 0, 1, 1, 0, 0, 1],
            "y": ["p", "p", "p", "p", "p", "p", "q", "q"],
        }
    )
    found = meta_features(read_table(write(tmp_path, frame), "y"))
    assert set(found) == set(META_FEATURES)
    expected = {
        "NumberOfInstances": 8,
        "NumberOfFeatures": 4,  # OpenML counts the target
        "NumberOfClasses": 2,
        "NumberOfNumericFeatures": 2,
        "NumberOfSymbolicFeatures": 2,
        "NumberOfBinaryFeatures": 3,  # b, c and the target
        "PercentageOfSymbolicFeatures": 50.0,
        "Dimensionality": 0.5,
        "MajorityClassSize": 6,
        "MinorityClassSize": 2,
        "MinorityClassPercentage": 25.0,
        "ClassEntropy": -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)),
        "NumberOfMissingValues": 2,
        "NumberOfInstancesWithMissingValues": 2,
        "PercentageOfMissingValues": 100 * 2 / 32,
        "PercentageOfInstancesWithMissingValues": 25.0,
    }
    for name, value in expected.items():
        assert found[name] == pytest.approx(value), name


def reference() -> MetaDataset:
    """Learner "a" wins on large data sets, "b" on small ones; "c" never does."""
    rows = []
    for d in range(30):
        values = dict.fromkeys(META_FEATURES, 5.0)  # alike but for their size
        values["NumberOfInstances"] = 100 if d % 2 else 100_000
        rows.append([values[name] for name in META_FEATURES])
    large = np.array([d % 2 == 0 for d in range(30)])
    scores = np.stack([np.where(large, 0.9, 0.6), np.where(large, 0.7, 0.8), np.full(30, 0.5)], axis=1)
    features = comparable(np.array(rows), META_FEATURES)
    return MetaDataset(tuple(f"d{d}" for d in range(30)), ("a", "b", "c"), scores, features, META_FEATURES)


def test_the_nearest_data_sets_decide_the_ranking():
    meta = reference()
    query = dict(zip(META_FEATURES, [5.0] * len(META_FEATURES)))
    for instances, first in ((120_000, "a"), (90, "b")):
        found = recommend({**query, "NumberOfInstances": instances}, k=5, reference=meta)
        assert [name for name, _ in found.learners] == [first, "b" if first == "a" else "a", "c"]
        assert len(found.nearest) == 5 and all(distance >= 0 for _, distance in found.nearest)
        parity = 0 if first == "a" else 1
        assert all(int(name[1:]) % 2 == parity for name, _ in found.nearest)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # defaults, as LCDB ran them
def test_every_lcdb_learner_runs_in_its_pipeline_on_an_ordinary_table(tmp_path):
    table = read_table(write(tmp_path, ordinary(rows=80)), "label")
    numeric = read_table(write(tmp_path, ordinary(rows=80).drop(columns="colour"), "numeric.csv"), "label")
    for name in LEARNERS:  # QDA's class covariances are singular on one-hot columns, as on LCDB's data sets
        if "Multinomial" in name:
            continue
        data = numeric if "Quadratic" in name else table
        model = pipeline(name, data).fit(data.features, data.target)
        assert set(model.predict(data.features)) <= {"yes", "no"}, name
    with pytest.raises(ValueError, match="Negative values"):  # LCDB's failures too, scored as the majority class
        pipeline("sklearn.naive_bayes.MultinomialNB", table).fit(table.features, table.target)
    assert describe("SVC_rbf") == "sklearn.svm.SVC(kernel='rbf')"
    with pytest.raises(UnknownNameError, match="unknown learner 'xgboost'"):
        describe("xgboost")


def test_the_command_ranks_learners_checks_the_top_ones_and_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(recommend_module, "reference_meta_dataset", lambda: lcdb_like_reference())
    path, out = write(tmp_path, ordinary()), tmp_path / "recommendation.json"
    result = CliRunner().invoke(
        cli, ["automl", "recommend", str(path), "--target", "label", "--check", "1", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "118 rows, 3 feature columns (2 numeric, 1 categorical), 2 classes" in result.output
    assert "note: dropped 'id': a row identifier" in result.output
    assert "1." in result.output and "cross-validated here:" in result.output
    record = json.loads(out.read_text())
    assert len(record["learners"]) == 2 and "cross_validated_accuracy" in record["learners"][0]
    assert record["meta_features"]["NumberOfInstances"] == 118


def lcdb_like_reference() -> MetaDataset:
    """Two LCDB learners on six invented data sets (the command needs LCDB's learner names)."""
    rng = np.random.default_rng(1)
    features = comparable(rng.uniform(1, 100, size=(6, len(META_FEATURES))), META_FEATURES)
    scores = rng.uniform(0.5, 0.9, size=(6, 2))
    learners = ("sklearn.tree.DecisionTreeClassifier", "sklearn.linear_model.LogisticRegression")
    return MetaDataset(tuple(f"d{i}" for i in range(6)), learners, scores, features, META_FEATURES)


def test_the_command_refuses_bad_input_in_one_line(tmp_path):
    path = write(tmp_path, ordinary())
    result = CliRunner().invoke(cli, ["automl", "recommend", str(path), "--target", "class"])
    assert result.exit_code == 1 and "no column 'class'" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(importlib.util.find_spec("lcdb") is None, reason="LCDB ships in a package: pip install lcdb==0.1.0")
def test_on_lcdb_a_table_is_matched_to_real_data_sets(tmp_path):
    result = CliRunner().invoke(cli, ["automl", "recommend", str(write(tmp_path, ordinary())), "--target", "label"])
    assert result.exit_code == 0, result.output
    assert result.output.count("sklearn.") >= 5 and "nearest LCDB data sets" in result.output


@pytest.mark.skipif(importlib.util.find_spec("lcdb") is None, reason="LCDB ships in a package: pip install lcdb==0.1.0")
def test_the_lcdb_reference_is_cached_exactly_and_rebuilt_when_stale(tmp_path):
    from learntolearn.automl.lcdb import cached_final_scores, final_scores

    cache = tmp_path / "lcdb.json"
    fresh, _ = final_scores("accuracy")
    first = cached_final_scores(cache=cache)
    stored = json.loads(cache.read_text())
    again = cached_final_scores(cache=cache)
    for meta in (first, again):
        assert meta.datasets == fresh.datasets and meta.learners == fresh.learners
        assert np.array_equal(meta.scores, fresh.scores)
        assert np.array_equal(meta.features, fresh.features, equal_nan=True)
    stored["key"][0][1] += 1  # as if LCDB's file had changed
    stored["scores"][0][0] = -1.0
    cache.write_text(json.dumps(stored))
    assert cached_final_scores(cache=cache).scores[0, 0] == fresh.scores[0, 0]
