"""Meta-learning algorithms; importing this package registers every one of them."""

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

__all__ = ["ALGORITHMS", "ANIL", "Algorithm", "CosineBaseline", "FineTuning", "LinearBaseline", "LogisticRegressionProbe", "MAML",
           "MatchingNetworks", "MemoryAugmentedNetwork", "MetaLearnerLSTM", "MetaLoss", "MetaSGD", "PrototypicalNetworks", "RecurrentLearner", "RelationNetworks", "Reptile",
           "SiameseNetworks"]
