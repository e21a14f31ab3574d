"""learntolearn: meta-learning ("learning to learn") for few-shot tasks."""

from learntolearn.algorithms import ALGORITHMS, Algorithm, MetaLoss, PrototypicalNetworks
from learntolearn.data import DATASETS, EpisodeSampler, EpisodeSet, ImageClassDataset, load_dataset, load_omniglot
from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.engine.evaluate import Evaluation, evaluate, paired_difference
from learntolearn.engine.trainer import TrainConfig, Trainer
from learntolearn.nn.backbones import BACKBONES
from learntolearn.types import Task

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS", "Algorithm", "BACKBONES", "DATASETS", "EpisodeSampler", "EpisodeSet", "Evaluation",
    "ImageClassDataset", "MetaLoss", "PrototypicalNetworks", "Task", "TrainConfig", "Trainer", "evaluate",
    "load_dataset", "load_lake_runs", "load_omniglot", "paired_difference",
]
