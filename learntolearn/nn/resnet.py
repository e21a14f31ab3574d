"""The residual backbones of the mini-ImageNet literature, registered as ``resnet12`` and ``wrn28-10``.

``resnet12``: four residual blocks of three 3x3 convolutions (BatchNorm, LeakyReLU 0.1) with a 1x1
projection shortcut, each followed by 2x2 max-pooling, widths 64-160-320-640 (Lee et al. 2019,
MetaOptNet; Ye et al. 2020, FEAT), global average pooling to 640 features. MetaOptNet's DropBlock
regularisation is not included. ``wrn28-10``: the wide residual network of Zagoruyko & Komodakis
(2016), depth 28 and widening 10, pre-activation blocks, widths 160-320-640, as the S2M2 and
LEO papers' feature extractors use it, global average pooling to 640 features.
"""

from __future__ import annotations

from torch import Tensor, nn

from learntolearn.nn.backbones import BACKBONES


class ResidualBlock12(nn.Module):
    """Three 3x3 convolutions with a 1x1 projection shortcut, then LeakyReLU and 2x2 max-pooling."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(3):
            layers += [
                nn.Conv2d(inputs if index == 0 else outputs, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
            ]
            if index < 2:
                layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, bias=False), nn.BatchNorm2d(outputs))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x) + self.shortcut(x))


@BACKBONES.register("resnet12")
def resnet12(in_channels: int = 3, widths: tuple[int, ...] = (64, 160, 320, 640)) -> nn.Sequential:
    """ResNet-12: an 84x84 RGB image gives a 640-d vector (5x5 maps averaged)."""
    blocks = [ResidualBlock12(i, o) for i, o in zip((in_channels, *widths[:-1]), widths)]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class WideBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, projected shortcut when the shape changes."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(inputs), nn.ReLU())
        self.body = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        )
        self.shortcut = nn.Conv2d(inputs, outputs, 1, stride, bias=False) if stride != 1 or inputs != outputs else None

    def forward(self, x: Tensor) -> Tensor:
        activated = self.pre(x)
        return self.body(activated) + (x if self.shortcut is None else self.shortcut(activated))


@BACKBONES.register("wrn28-10")
def wide_resnet(in_channels: int = 3, depth: int = 28, widen: int = 10) -> nn.Sequential:
    """WRN-depth-widen: three groups of (depth - 4) / 6 blocks, widths 16*widen, 32*widen, 64*widen."""
    blocks_per_group = (depth - 4) // 6
    layers: list[nn.Module] = [nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)]
    inputs = 16
    for group, width in enumerate((16 * widen, 32 * widen, 64 * widen)):
        for index in range(blocks_per_group):
            layers.append(WideBlock(inputs, width, 2 if index == 0 and group > 0 else 1))
            inputs = width
    layers += [nn.BatchNorm2d(inputs), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)
