"""LCDB's 20 learners as scikit-learn pipelines with LCDB's preprocessing, so that a recommended learner is the
one whose curves the recommendation was learnt from: missing numbers imputed with the column's median,
missing categories with its mode, categories one-hot encoded, no scaling, every learner at its defaults
(as in ``lcdb.computelc``: ``SVC_linear`` is ``LinearSVC``, ``SVC_<kernel>`` is ``SVC(kernel=...)``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from learntolearn.automl.table import TableColumns
from learntolearn.errors import UnknownNameError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from learntolearn.automl.table import Table

#: LCDB's learner name -> (scikit-learn class, constructor arguments)
LEARNERS: dict[str, tuple[str, dict[str, Any]]] = {
    "SVC_linear": ("sklearn.svm.LinearSVC", {}),
    **{f"SVC_{kernel}": ("sklearn.svm.SVC", {"kernel": kernel}) for kernel in ("poly", "rbf", "sigmoid")},
    # deprecated in scikit-learn 1.8 for this equivalent, which it names
    "sklearn.linear_model.PassiveAggressiveClassifier": (
        "sklearn.linear_model.SGDClassifier",
        {"loss": "hinge", "penalty": None, "learning_rate": "pa1", "eta0": 1.0},
    ),
    **{
        name: (name, {})
        for name in (
            "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
            "sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis",
            "sklearn.ensemble.ExtraTreesClassifier",
            "sklearn.ensemble.GradientBoostingClassifier",
            "sklearn.ensemble.RandomForestClassifier",
            "sklearn.linear_model.LogisticRegression",
            "sklearn.linear_model.Perceptron",
            "sklearn.linear_model.RidgeClassifier",
            "sklearn.linear_model.SGDClassifier",
            "sklearn.naive_bayes.BernoulliNB",
            "sklearn.naive_bayes.MultinomialNB",
            "sklearn.neighbors.KNeighborsClassifier",
            "sklearn.neural_network.MLPClassifier",
            "sklearn.tree.DecisionTreeClassifier",
            "sklearn.tree.ExtraTreeClassifier",
        )
    },
}


def describe(learner: str) -> str:
    """The learner as a scikit-learn constructor call, e.g. ``sklearn.svm.SVC(kernel='rbf')``."""
    path, arguments = spec(learner)
    return f"{path}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"


def spec(learner: str) -> tuple[str, dict[str, Any]]:
    if learner not in LEARNERS:
        raise UnknownNameError(f"unknown learner {learner!r}; LCDB's are: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[learner]


def pipeline(learner: str, table: Table, **overrides: Any) -> Pipeline:
    """LCDB's preprocessing for ``table``'s columns followed by ``learner`` (its defaults, then ``overrides``)."""
    from sklearn.compose import ColumnTransformer  # scikit-learn: the well-kept pipelines and learners
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    path, arguments = spec(learner)
    module, _, name = path.rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**{**arguments, **overrides})
    categories = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    )
    columns = ColumnTransformer(
        [("numbers", SimpleImputer(strategy="median"), table.numeric), ("categories", categories, table.categorical)],
        sparse_threshold=0.0,
    )
    return make_pipeline(TableColumns(table.numeric, table.categorical), columns, estimator)
