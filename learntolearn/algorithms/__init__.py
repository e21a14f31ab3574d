"""Meta-learning algorithms; importing this package registers every one of them."""

from learntolearn.algorithms.anil import ANIL
from learntolearn.algorithms.base import ALGORITHMS, Algorithm, MetaLoss
from learntolearn.algorithms.maml import MAML
from learntolearn.algorithms.metasgd import MetaSGD
from learntolearn.algorithms.protonet import PrototypicalNetworks
from learntolearn.algorithms.reptile import Reptile

__all__ = ["ALGORITHMS", "ANIL", "Algorithm", "MAML", "MetaLoss", "MetaSGD", "PrototypicalNetworks", "Reptile"]
