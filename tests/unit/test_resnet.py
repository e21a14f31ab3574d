"""The mini-ImageNet backbones: published parameter counts, output shapes, registered names."""

import torch

from learntolearn.engine.build import build_backbone
from learntolearn.nn.resnet import resnet12, wide_resnet


def test_resnet12_has_metaoptnets_12_4_million_parameters_and_640_features():
    network = resnet12()
    assert sum(p.numel() for p in network.parameters()) == 12_424_320
    assert network(torch.zeros(2, 3, 84, 84)).shape == (2, 640)


def test_wrn_28_10_has_the_published_36_5_million_parameters():
    network = wide_resnet()
    # Zagoruyko & Komodakis's WRN-28-10 for CIFAR-10 has 36,479,194 parameters with its 640x10 classifier
    assert sum(p.numel() for p in network.parameters()) + 640 * 10 + 10 == 36_479_194
    assert network(torch.zeros(2, 3, 32, 32)).shape == (2, 640)


def test_both_are_ltl_train_backbones():
    assert build_backbone("resnet12", (3, 84, 84))(torch.zeros(1, 3, 84, 84)).shape == (1, 640)
    assert build_backbone("wrn28-10", (1, 28, 28))(torch.zeros(1, 1, 28, 28)).shape == (1, 640)
