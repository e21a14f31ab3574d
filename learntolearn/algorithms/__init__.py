"""Meta-learning algorithms; importing this package registers every one of them."""

from learntolearn.algorithms.base import ALGORITHMS, Algorithm, MetaLoss
from learntolearn.algorithms.protonet import PrototypicalNetworks

__all__ = ["ALGORITHMS", "Algorithm", "MetaLoss", "PrototypicalNetworks"]
