"""learntolearn: meta-learning ("learning to learn") for few-shot tasks."""

from importlib.metadata import version

from learntolearn.algorithms import (
    ALGORITHMS,
    ANIL,
    MAML,
    Algorithm,
    MetaLoss,
    MetaSGD,
    PrototypicalNetworks,
    Reptile,
)
from learntolearn.data import (
    DATASETS,
    EpisodeSampler,
    EpisodeSet,
    ImageClassDataset,
    load_dataset,
    load_omniglot,
)
from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.data.sinusoid import SinusoidTasks
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import Evaluation, evaluate, paired_difference
from learntolearn.engine.model_file import export_model, load_trained
from learntolearn.engine.trainer import Trainer
from learntolearn.fewshot import FewShotClassifier, Prediction
from learntolearn.nn.backbones import BACKBONES
from learntolearn.types import Task

__version__ = version("learntolearn")

__all__ = [
    "ALGORITHMS",
    "ANIL",
    "BACKBONES",
    "DATASETS",
    "MAML",
    "Algorithm",
    "EpisodeSampler",
    "EpisodeSet",
    "Evaluation",
    "FewShotClassifier",
    "ImageClassDataset",
    "MetaLoss",
    "MetaSGD",
    "Prediction",
    "PrototypicalNetworks",
    "Reptile",
    "SinusoidTasks",
    "Task",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "export_model",
    "load_dataset",
    "load_lake_runs",
    "load_omniglot",
    "load_trained",
    "paired_difference",
]
