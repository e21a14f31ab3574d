"""OML: online-aware meta-learning (Javed & White, NeurIPS 2019, "Meta-learning representations for continual
learning").

A representation network (RLN: convolutions) feeds a prediction network (PLN: two fully connected layers).
Meta-training (:func:`~learntolearn.continual.trajectory.remembering_loss`): the PLN alone takes one SGD step
per image of one class, then the loss on that class and on random images of other classes is
backpropagated through the trajectory into the RLN and the PLN's initial weights. At meta-test the RLN is
frozen and only the PLN learns the stream. The paper's RLN has 256-channel convolutions on 84x84 images; this
one runs on 28x28 with ``channels`` chosen for the CPU budget (the run records it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.algorithms.inner import Params
from learntolearn.nn.functional import conv_features, conv_stack, init_conv_stack, init_linear, linear


@dataclass(frozen=True)
class OMLConfig:
    channels: int = 64
    hidden: int = 256
    classes: int = 1000
    inner_lr: float = 0.03
    meta_lr: float = 1e-4
    trajectory: int = 20  # images of one class, one SGD step each
    remember: int = 64  # images of other classes in the meta-loss
    first_order: bool = False


#: the parameters that learn online (in the inner trajectory and at meta-test)
FAST = ("pln.0.weight", "pln.0.bias", "pln.1.weight", "pln.1.bias")
OUTPUT = "pln.1"


def init_oml(config: OMLConfig, generator: torch.Generator) -> Params:
    features = conv_features(config.channels)
    return {
        **init_conv_stack("rln", config.channels, generator),
        **init_linear("pln.0", features, config.hidden, generator),
        **init_linear("pln.1", config.hidden, config.classes, generator),
    }


def oml_logits(params: Params, images: Tensor) -> Tensor:
    features = conv_stack(params, "rln", images)
    return linear(params, "pln.1", torch.relu(linear(params, "pln.0", features)))
