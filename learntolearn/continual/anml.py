"""ANML: a neuromodulated meta-learning algorithm (Beaulieu et al., ECAI 2020, "Learning to continually learn").

A neuromodulatory network (NM: convolutions and a linear layer with a sigmoid) computes, from the input, a
gate in [0, 1] for every feature of the prediction network (convolutions and a linear output layer); the
gated features feed the output layer, so the gate also gates which weights a gradient step changes.
Meta-training uses OML's trajectory objective with the prediction network as the fast part (the NM learns in
the outer loop only); at meta-test the NM and the prediction convolutions are frozen and the output layer
learns the stream, as the authors' evaluation does. The paper's networks have 256 (prediction) and 112 (NM)
channels; ``channels`` and ``nm_channels`` are chosen for the CPU budget (the run records them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.algorithms.inner import Params
from learntolearn.nn.functional import conv_features, conv_stack, init_conv_stack, init_linear, linear


@dataclass(frozen=True)
class ANMLConfig:
    channels: int = 64
    nm_channels: int = 28
    classes: int = 1000
    inner_lr: float = 0.03
    meta_lr: float = 1e-3
    trajectory: int = 20
    remember: int = 64
    first_order: bool = False


OUTPUT = "pred.fc"
#: the fast parameters in meta-training (the whole prediction network) and at meta-test (its output layer)
META_TRAINING_FAST_PREFIX = "pred."
META_TEST_FAST = ("pred.fc.weight", "pred.fc.bias")


def init_anml(config: ANMLConfig, generator: torch.Generator) -> Params:
    features = conv_features(config.channels)
    return {
        **init_conv_stack("nm", config.nm_channels, generator),
        **init_linear("nm.gate", conv_features(config.nm_channels), features, generator),
        **init_conv_stack("pred", config.channels, generator),
        **init_linear("pred.fc", features, config.classes, generator),
    }


def meta_training_fast(params: Params) -> tuple[str, ...]:
    return tuple(name for name in params if name.startswith(META_TRAINING_FAST_PREFIX))


def anml_logits(params: Params, images: Tensor) -> Tensor:
    gate = torch.sigmoid(linear(params, "nm.gate", conv_stack(params, "nm", images)))
    return linear(params, "pred.fc", conv_stack(params, "pred", images) * gate)
