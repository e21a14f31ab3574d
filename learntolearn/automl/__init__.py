"""Meta-learning across data sets: choose a learner for a new tabular data set from experience on others."""

from learntolearn.automl.selection import (
    Evaluation,
    MetaDataset,
    NearestDatasets,
    ScoreRegressor,
    Selector,
    SingleBest,
    leave_one_out,
)

__all__ = ["Evaluation", "MetaDataset", "NearestDatasets", "ScoreRegressor", "Selector", "SingleBest", "leave_one_out"]
