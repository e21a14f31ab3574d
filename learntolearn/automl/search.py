"""Hyper-parameter search over scikit-learn pipelines with Optuna, warm-started by meta-learning.

The search space is conditional: a learner (nine of LCDB's, each with the hyper-parameters that matter
most), whether to standardise numbers, then that learner's hyper-parameters. A warm start (auto-sklearn 1.0,
Feurer et al., NeurIPS 2015) makes the first trials the learners a recommendation ranks highest, each at
scikit-learn's defaults - the configurations LCDB measured - before the sampler (TPE, Bergstra et al. 2011)
takes over. Trials are scored by stratified cross-validated accuracy.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from learntolearn.automl.pipelines import pipeline
from learntolearn.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    from sklearn.pipeline import Pipeline

    from learntolearn.automl.table import Table

Space = Callable[["optuna.trial.BaseTrial"], dict[str, Any]]


def forest(prefix: str) -> Space:
    def space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int(f"{prefix}.n_estimators", 10, 500, log=True),
            "max_features": trial.suggest_categorical(f"{prefix}.max_features", ["sqrt", "log2", 0.25, 0.5, 1.0]),
            "min_samples_leaf": trial.suggest_int(f"{prefix}.min_samples_leaf", 1, 32, log=True),
        }

    return space


#: learner -> (its hyper-parameters from a trial, their scikit-learn defaults as trial parameters)
SPACES: dict[str, tuple[Space, dict[str, Any]]] = {
    "sklearn.ensemble.RandomForestClassifier": (
        forest("rf"),
        {"rf.n_estimators": 100, "rf.max_features": "sqrt", "rf.min_samples_leaf": 1},
    ),
    "sklearn.ensemble.ExtraTreesClassifier": (
        forest("et"),
        {"et.n_estimators": 100, "et.max_features": "sqrt", "et.min_samples_leaf": 1},
    ),
    "sklearn.ensemble.GradientBoostingClassifier": (
        lambda t: {
            "learning_rate": t.suggest_float("gb.learning_rate", 0.01, 1.0, log=True),
            "n_estimators": t.suggest_int("gb.n_estimators", 10, 500, log=True),
            "max_depth": t.suggest_int("gb.max_depth", 1, 10),
        },
        {"gb.learning_rate": 0.1, "gb.n_estimators": 100, "gb.max_depth": 3},
    ),
    "sklearn.linear_model.LogisticRegression": (
        lambda t: {"C": t.suggest_float("lr.C", 1e-4, 1e4, log=True), "max_iter": 1000},
        {"lr.C": 1.0},
    ),
    "SVC_linear": (lambda t: {"C": t.suggest_float("linsvc.C", 1e-4, 1e4, log=True)}, {"linsvc.C": 1.0}),
    "SVC_rbf": (lambda t: {"C": t.suggest_float("svc.C", 1e-3, 1e3, log=True)}, {"svc.C": 1.0}),
    "sklearn.neighbors.KNeighborsClassifier": (
        lambda t: {
            "n_neighbors": t.suggest_int("knn.n_neighbors", 1, 64, log=True),
            "weights": t.suggest_categorical("knn.weights", ["uniform", "distance"]),
        },
        {"knn.n_neighbors": 5, "knn.weights": "uniform"},
    ),
    "sklearn.neural_network.MLPClassifier": (
        lambda t: {
            "alpha": t.suggest_float("mlp.alpha", 1e-6, 1.0, log=True),
            "hidden_layer_sizes": (t.suggest_int("mlp.width", 8, 512, log=True),),
            "learning_rate_init": t.suggest_float("mlp.learning_rate_init", 1e-4, 1e-1, log=True),
        },
        {"mlp.alpha": 1e-4, "mlp.width": 100, "mlp.learning_rate_init": 1e-3},
    ),
    "sklearn.tree.DecisionTreeClassifier": (
        lambda t: {
            "min_samples_leaf": t.suggest_int("tree.min_samples_leaf", 1, 64, log=True),
            "criterion": t.suggest_categorical("tree.criterion", ["gini", "entropy"]),
        },
        {"tree.min_samples_leaf": 1, "tree.criterion": "gini"},
    ),
}


def configuration(trial: optuna.trial.BaseTrial) -> tuple[str, bool, dict[str, Any]]:
    """A trial's learner, whether numbers are standardised, and the learner's arguments."""
    learner = trial.suggest_categorical("learner", sorted(SPACES))
    standardise = trial.suggest_categorical("standardise", [False, True])
    return learner, standardise, SPACES[learner][0](trial)


def warm_start_trials(ranked: Sequence[str], count: int) -> list[dict[str, Any]]:
    """Trial parameters of the ``count`` best-ranked learners that have a search space, at their defaults
    and without standardising (as LCDB ran them)."""
    chosen = [name for name in ranked if name in SPACES][:count]
    return [{"learner": name, "standardise": False, **SPACES[name][1]} for name in chosen]


def portfolio(random_per_learner: int, seed: int = 0) -> list[dict[str, Any]]:
    """Trial parameters of a fixed portfolio: every learner at its defaults, then ``random_per_learner``
    configurations of each drawn uniformly from its space (standardising or not), reproducibly from ``seed``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configurations = warm_start_trials(sorted(SPACES), len(SPACES))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for learner in sorted(SPACES):
        for _ in range(random_per_learner):
            study.enqueue_trial({"learner": learner})
            trial = study.ask()
            configuration(trial)
            configurations.append(dict(trial.params))
            study.tell(trial, 0.0)
    return configurations


def parse_budget(text: str) -> float:
    """Seconds from ``90s``, ``5m``, ``1.5h`` or a bare number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"budget {text!r}: write a positive duration such as 90s, 5m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def build(learner: str, standardise: bool, arguments: dict[str, Any], table: Table) -> Pipeline:
    from sklearn.preprocessing import StandardScaler  # scikit-learn: the well-kept pipelines and learners

    model = pipeline(learner, table, **arguments)
    if standardise:
        model.steps.insert(2, ("standardise", StandardScaler()))  # after picking and encoding the columns
    return model


@dataclass
class SearchResult:
    """The best configuration, its cross-validated accuracy, every trial's, and the refitted pipeline."""

    learner: str
    standardise: bool
    arguments: dict[str, Any]
    accuracy: float
    trials: list[dict[str, Any]]
    model: Pipeline


def search(
    table: Table,
    trials: int | None = None,
    seconds: float | None = None,
    warm_start: Sequence[dict[str, Any]] = (),
    sampler: str = "tpe",
    seed: int = 0,
    folds: int = 5,
    log: Callable[[str], None] | None = None,
    refit: bool = True,
) -> SearchResult:
    """Search until ``trials`` trials or ``seconds`` have passed (whichever first); ``warm_start`` trials first.
    Without ``refit`` the result's model is the best pipeline unfitted."""
    import optuna  # Optuna: the well-kept sampler, trial bookkeeping and conditional search spaces
    from numpy.linalg import LinAlgError
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if trials is None and seconds is None:
        raise ConfigError("give a number of trials, a time budget, or both")
    if sampler not in ("tpe", "random"):
        raise ConfigError(f"sampler {sampler!r}: choose tpe or random")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=chosen)
    for parameters in warm_start:
        study.enqueue_trial(parameters)
    splits = StratifiedKFold(min(folds, int(table.target.value_counts().min())), shuffle=True, random_state=seed)
    started = time.monotonic()

    def objective(trial: optuna.trial.BaseTrial) -> float:
        model = build(*configuration(trial), table)
        with warnings.catch_warnings():  # an iteration cap reached is part of what the search weighs
            warnings.simplefilter("ignore", ConvergenceWarning)
            score = cross_val_score(model, table.features, table.target, cv=splits, error_score="raise")
        trial.set_user_attr("seconds", time.monotonic() - started)
        if log:
            log(f"trial {trial.number}: {100 * score.mean():.2f}%  {trial.params}")
        return float(score.mean())

    study.optimize(objective, n_trials=trials, timeout=seconds, catch=(ValueError, LinAlgError, ArithmeticError))
    finished = [t for t in study.trials if t.value is not None]
    if not finished:
        raise ConfigError("no trial finished within the budget: give it more time or trials")
    best = study.best_trial
    learner, standardise, arguments = configuration(optuna.trial.FixedTrial(best.params))
    model = build(learner, standardise, arguments, table)
    if refit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(table.features, table.target)
    history = [{"number": t.number, "accuracy": t.value, "params": t.params, **t.user_attrs} for t in finished]
    return SearchResult(learner, standardise, arguments, float(best.value or 0.0), history, model)
