"""`ltl automl search`: warm-start trials run first and are the learners' true defaults, the search keeps the
best trial and refits it, budgets parse or fail clearly, and the command saves a model it never overwrites."""

import joblib
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from test_automl_recommend import ordinary, write

from learntolearn.automl.pipelines import pipeline
from learntolearn.automl.search import SPACES, build, configuration, parse_budget, search, warm_start_trials
from learntolearn.automl.table import read_table
from learntolearn.cli.main import cli
from learntolearn.errors import ConfigError, DataError


@pytest.mark.parametrize("learner", sorted(SPACES))
def test_warm_start_parameters_are_the_learners_scikit_learn_defaults(learner, tmp_path):
    table = read_table(write(tmp_path, ordinary(rows=40)), "label")
    (parameters,) = warm_start_trials([learner], 1)
    built = build(*configuration(optuna.trial.FixedTrial(parameters)), table)
    default = pipeline(learner, table)
    assert [name for name, _ in built.steps] == [name for name, _ in default.steps]  # no scaler added
    overrides = {"max_iter"}  # logistic regression: more iterations so the search is not cut short
    built_params, default_params = built.steps[-1][1].get_params(), default.steps[-1][1].get_params()
    assert {k: v for k, v in built_params.items() if k not in overrides} == {
        k: v for k, v in default_params.items() if k not in overrides
    }


def test_warm_start_keeps_the_ranking_and_skips_learners_without_a_space():
    ranked = ["sklearn.naive_bayes.BernoulliNB", "SVC_rbf", "sklearn.ensemble.RandomForestClassifier", "SVC_linear"]
    assert [t["learner"] for t in warm_start_trials(ranked, 2)] == [
        "SVC_rbf",
        "sklearn.ensemble.RandomForestClassifier",
    ]
    assert all(t["standardise"] is False for t in warm_start_trials(ranked, 3))


def test_the_search_runs_the_warm_start_first_and_keeps_the_best_trial(tmp_path):
    table = read_table(write(tmp_path, ordinary(rows=90)), "label")
    first = warm_start_trials(["sklearn.tree.DecisionTreeClassifier", "sklearn.linear_model.LogisticRegression"], 2)
    result = search(table, trials=5, warm_start=first, seed=1)
    assert [t["params"] for t in result.trials[:2]] == first
    assert len(result.trials) == 5 and result.accuracy == max(t["accuracy"] for t in result.trials)
    assert result.accuracy > 0.8  # the label is a threshold on one feature
    predicted = result.model.predict(table.features)
    assert (predicted == table.target.to_numpy()).mean() > 0.8


def test_budgets_parse_and_bad_ones_name_the_form():
    assert parse_budget("90s") == 90 and parse_budget("5m") == 300 and parse_budget("1.5h") == 5400
    assert parse_budget("12") == 12
    for bad in ("five minutes", "0m", "-3s", "5d"):
        with pytest.raises(ConfigError, match="such as 90s, 5m or 1h"):
            parse_budget(bad)
    with pytest.raises(ConfigError, match="trials, a time budget"):
        search(None, trials=None, seconds=None)


def test_the_command_saves_a_working_model_and_never_overwrites_without_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write(tmp_path, ordinary(rows=90))
    args = ["automl", "search", str(data), "--target", "label", "--trials", "2", "--warm", "0", "--budget", "2m"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "best of 2 trials" in result.output and "data.joblib" in result.output
    model = joblib.load(tmp_path / "data.joblib")
    rows = pd.read_csv(data).drop(columns="label").head(5)
    assert set(model.predict(rows)) <= {"yes", "no"} and len(model.predict(rows)) == 5  # raw rows, "?" and all
    with pytest.raises(DataError, match="lack the column\\(s\\) 'x'"):
        model.predict(rows.drop(columns="x"))
    before = (tmp_path / "data.joblib").read_bytes()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    assert (tmp_path / "data.joblib").read_bytes() == before
    bad = CliRunner().invoke(cli, [*args[:-1], "soon", "--force"])
    assert bad.exit_code == 1 and "budget 'soon'" in bad.output and "Traceback" not in bad.output
