"""Small networks as pure functions over parameter dicts (for ``torch.func`` and functional inner loops): a
stack of 3x3 convolutions (valid padding, ReLU, 2x2 max-pooling after all but the last: 28x28 -> 3x3 maps)
and linear layers. The continual learners and the federated clients share them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.types import Params


def init_conv_stack(
    prefix: str, channels: int, generator: torch.Generator, layers: int = 3, in_channels: int = 1, *, norm: bool = False
) -> Params:
    """Kaiming-normal convolutions with zero biases; with ``norm``, a batch norm's scale and shift after each."""
    params: Params = {}
    for layer in range(layers):
        fan_in = (in_channels if layer == 0 else channels) * 9
        weight = torch.randn(channels, in_channels if layer == 0 else channels, 3, 3, generator=generator)
        params[f"{prefix}.conv{layer}.weight"] = weight * (2 / fan_in) ** 0.5  # Kaiming normal
        params[f"{prefix}.conv{layer}.bias"] = torch.zeros(channels)
        if norm:
            params[f"{prefix}.norm{layer}.weight"] = torch.ones(channels)
            params[f"{prefix}.norm{layer}.bias"] = torch.zeros(channels)
    return params


def conv_stack(params: Params, prefix: str, x: Tensor) -> Tensor:
    """``[n, 1, 28, 28]`` -> flattened features ``[n, channels * 9]``. Layers with a ``norm`` scale and shift are
    batch-normalised with the statistics of ``x`` itself (no running statistics, as MAML's network)."""
    layers = sum(1 for name in params if name.startswith(f"{prefix}.conv") and name.endswith(".weight"))
    for layer in range(layers):
        x = F.conv2d(x, params[f"{prefix}.conv{layer}.weight"], params[f"{prefix}.conv{layer}.bias"])
        if f"{prefix}.norm{layer}.weight" in params:
            scale, shift = params[f"{prefix}.norm{layer}.weight"], params[f"{prefix}.norm{layer}.bias"]
            x = F.batch_norm(x, None, None, scale, shift, training=True)
        x = torch.relu(x)
        if layer < layers - 1:
            x = F.max_pool2d(x, 2)
    return x.flatten(1)


def conv_features(channels: int, image_size: int = 28, layers: int = 3) -> int:
    size = image_size
    for layer in range(layers):
        size -= 2
        if layer < layers - 1:
            size //= 2
    return channels * size * size


def init_linear(name: str, in_features: int, out_features: int, generator: torch.Generator) -> Params:
    weight = torch.randn(out_features, in_features, generator=generator) * (2 / in_features) ** 0.5
    return {f"{name}.weight": weight, f"{name}.bias": torch.zeros(out_features)}


def linear(params: Params, name: str, x: Tensor) -> Tensor:
    return F.linear(x, params[f"{name}.weight"], params[f"{name}.bias"])
