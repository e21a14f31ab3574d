"""From a run config to objects: the algorithm around a fresh backbone, the outer optimiser and its schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from learntolearn.algorithms.base import ALGORITHMS, Algorithm, ModelSetting
from learntolearn.engine.config import TrainConfig
from learntolearn.nn import efficientnet, resnet  # noqa: F401  (register efficientnet-lite0, resnet12, wrn28-10)
from learntolearn.nn.backbones import BACKBONES

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def build_backbone(name: str, input_shape: tuple[int, ...]) -> nn.Module:
    """The registered backbone ``name`` for inputs of shape ``(C, H, W)`` (flat backbones take their size)."""
    factory = BACKBONES.get(name)
    if getattr(factory, "flat_input", False):
        return factory(in_features=math.prod(input_shape))
    return factory(in_channels=input_shape[0])


def output_shape(backbone: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The backbone's output shape for one input, measured on zeros in eval mode (BatchNorm-safe)."""
    was_training = backbone.training
    with torch.no_grad():
        shape = tuple(backbone.eval()(torch.zeros(2, *input_shape)).shape[1:])
    backbone.train(was_training)
    return shape


def build_algorithm(
    config: TrainConfig, input_shape: tuple[int, ...], train_classes: int, *, regression: bool = False
) -> Algorithm:
    """The configured algorithm around a fresh backbone for inputs of shape ``input_shape``; ``regression``
    tasks get one output of squared error instead of one per way."""
    backbone = build_backbone(config.backbone, input_shape)
    episodes = config.episodes
    ways = 1 if regression else episodes.ways
    setting = ModelSetting(
        output_shape(backbone, input_shape),
        ways,
        max(ways, 1 if regression else episodes.training_ways),
        train_classes,
        config.run.precision,
        regression,
    )
    return ALGORITHMS.get(config.algorithm).build(config.algorithm_settings, backbone, setting)


def build_optimizer(
    config: TrainConfig, algorithm: Algorithm
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The outer optimiser over the algorithm's parameters, and its learning-rate schedule."""
    run = config.run
    optimizer = OPTIMIZERS[run.outer_optimizer](algorithm.parameters(), lr=run.lr)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if run.lr_schedule == "linear":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / run.steps))
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=run.lr_halve_every, gamma=0.5)
    return optimizer, scheduler
