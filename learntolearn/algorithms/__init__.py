"""Meta-learning algorithms; importing this package registers every one of them."""

import importlib
import pkgutil

from learntolearn.algorithms.anil import ANIL
from learntolearn.algorithms.base import ALGORITHMS, Algorithm, MetaLoss
from learntolearn.algorithms.baseline import CosineBaseline, FineTuning, LinearBaseline
from learntolearn.algorithms.logistic import LogisticRegressionProbe
from learntolearn.algorithms.maml import MAML
from learntolearn.algorithms.mann import MemoryAugmentedNetwork
from learntolearn.algorithms.matching import MatchingNetworks
from learntolearn.algorithms.metalstm import MetaLearnerLSTM
from learntolearn.algorithms.metasgd import MetaSGD
from learntolearn.algorithms.protonet import PrototypicalNetworks
from learntolearn.algorithms.recurrent import RecurrentLearner
from learntolearn.algorithms.relation import RelationNetworks
from learntolearn.algorithms.reptile import Reptile
from learntolearn.algorithms.siamese import SiameseNetworks

__all__ = [
    "ALGORITHMS",
    "ANIL",
    "MAML",
    "Algorithm",
    "CosineBaseline",
    "FineTuning",
    "LinearBaseline",
    "LogisticRegressionProbe",
    "MatchingNetworks",
    "MemoryAugmentedNetwork",
    "MetaLearnerLSTM",
    "MetaLoss",
    "MetaSGD",
    "PrototypicalNetworks",
    "RecurrentLearner",
    "RelationNetworks",
    "Reptile",
    "SiameseNetworks",
]

# every module of this package registers its algorithms when imported: a new file needs no edit here
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
