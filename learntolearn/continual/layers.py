"""Pure functions over parameter dicts shared by the continual learners: a stack of 3x3 convolutions (valid
padding, ReLU, 2x2 max-pooling after all but the last: 28x28 -> 3x3 maps) and linear layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.algorithms.inner import Params


def init_conv_stack(
    prefix: str, channels: int, generator: torch.Generator, layers: int = 3, in_channels: int = 1
) -> Params:
    params: Params = {}
    for layer in range(layers):
        fan_in = (in_channels if layer == 0 else channels) * 9
        weight = torch.randn(channels, in_channels if layer == 0 else channels, 3, 3, generator=generator)
        params[f"{prefix}.conv{layer}.weight"] = weight * (2 / fan_in) ** 0.5  # Kaiming normal
        params[f"{prefix}.conv{layer}.bias"] = torch.zeros(channels)
    return params


def conv_stack(params: Params, prefix: str, x: Tensor) -> Tensor:
    """``[n, 1, 28, 28]`` -> flattened features ``[n, channels * 9]``."""
    layers = sum(1 for name in params if name.startswith(f"{prefix}.conv") and name.endswith(".weight"))
    for layer in range(layers):
        x = torch.relu(F.conv2d(x, params[f"{prefix}.conv{layer}.weight"], params[f"{prefix}.conv{layer}.bias"]))
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


def reset_output_row(params: Params, name: str, row: int, generator: torch.Generator) -> None:
    """Re-draw one class's output weights (Kaiming normal) and zero its bias, in place: before a meta-training
    trajectory on that class, so it is learnt from scratch inside the trajectory (OML's and ANML's code)."""
    weight = params[f"{name}.weight"]
    with torch.no_grad():
        weight[row] = torch.randn(weight.shape[1], generator=generator) * (2 / weight.shape[1]) ** 0.5
        params[f"{name}.bias"][row] = 0.0


def with_fresh_output(params: Params, name: str, generator: torch.Generator) -> Params:
    """A copy of ``params`` whose output layer is re-drawn (Kaiming normal, zero bias): where learning a stream
    starts at meta-test, as the authors' evaluation does."""
    weight = params[f"{name}.weight"]
    fresh = torch.randn(weight.shape, generator=generator) * (2 / weight.shape[1]) ** 0.5
    return {**params, f"{name}.weight": fresh, f"{name}.bias": torch.zeros_like(params[f"{name}.bias"])}
