"""Embedding networks shared by all algorithms, registered by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from learntolearn.nn.adapter import ResidualAdapter
from learntolearn.nn.norm_pool import conv_norm_pool_relu
from learntolearn.nn.strided_conv import StridedConv2d
from learntolearn.nn.strided_conv import kernels as strided_conv_kernels
from learntolearn.registry import Registry

BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")


class ConvNet(nn.Sequential):
    """A sequential conv net that runs channels-last (NHWC), which CPU convolution kernels run faster on.

    Inputs are laid out channels-last on entry and the weights are kept so; this changes speed
    (``benchmarks/channels_last.py``), not results beyond float rounding. ``torch.func.vmap``
    cannot handle that layout, so vmapped algorithms call :meth:`use_contiguous_layout` first.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.channels_last = True
        self.compute_dtype: torch.dtype | None = None
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stub omits it

    def use_contiguous_layout(self) -> ConvNet:
        """NCHW throughout, and PyTorch's convolutions (the C ones need channels-last maps and have no vmap rule)."""
        self.channels_last = False
        self.use_native_convolutions(False)
        return self.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]

    def use_native_convolutions(self, enabled: bool = True) -> ConvNet:
        """Run the strided 3x3 convolutions as the C kernels of :mod:`learntolearn.nn.strided_conv`, faster on the
        small batches of a task (where they could be built: :mod:`learntolearn.nn.native`)."""
        enabled = enabled and strided_conv_kernels() is not None
        for layer in self.modules():
            if isinstance(layer, StridedConv2d):
                layer.native = enabled
        return self

    def use_fused_blocks(self) -> ConvNet:
        """Run each conv block's BatchNorm, pooling and ReLU as one fused operator in training steps
        (:mod:`learntolearn.nn.norm_pool`; passes whose gradient is differentiated again run inside its
        ``twice_differentiable()``)."""
        for block in self.modules():
            if isinstance(block, ConvBlock):
                block.fused = True
        return self

    def use_bfloat16(self) -> ConvNet:
        """Mixed precision: convolutions run under bfloat16 autocast, weights and outputs stay float32.

        Faster on CPUs with AVX512-BF16 (``benchmarks/protonet_peers.py`` measures it); accuracy is
        checked against float32 by ``ltl reproduce precision``.
        """
        self.compute_dtype = torch.bfloat16
        return self

    def forward(self, x):
        if self.channels_last and x.dim() == 4:
            x = channels_last(x)
        if self.compute_dtype is None:
            return super().forward(x)
        with torch.autocast(x.device.type, dtype=self.compute_dtype):
            out = super().forward(x)
        return out.float()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` laid out channels-last, with strides that say so even when it has one channel.

    A one-channel image batch is contiguous in both layouts, and PyTorch then reads its layout as
    NCHW; the convolution takes its output layout from the weight instead, and a fast weight computed
    in an inner loop (``p - lr * grad``) has NCHW strides. Its output, and the BatchNorm and
    max-pooling after it, then ran in NCHW, where CPU max-pooling is many times slower (MAML's
    15-query rows of ``benchmarks/maml_peers.py``). The view below (no copy) gives the batch
    unambiguous channels-last strides.
    """
    if x.shape[1] == 1 and x.is_contiguous():
        n, _, height, width = x.shape
        return x.reshape(n, height, width, 1).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=torch.channels_last)


class ConvBlock(nn.Sequential):
    """Convolution, BatchNorm, 2x2 max-pooling and ReLU; with ``fused`` set, the last three run fused."""

    fused = False

    def forward(self, x):
        if not self.fused:
            return super().forward(x)
        return conv_norm_pool_relu(x, self[0], self[1])


def conv_block(in_channels: int, out_channels: int) -> ConvBlock:
    """3x3 convolution, BatchNorm, ReLU, 2x2 max-pooling (Vinyals et al. 2016, Snell et al. 2017).

    The ReLU runs after the pooling: ReLU is monotonic, so ``max(relu(x)) == relu(max(x))`` and
    outputs and gradients equal the papers' order exactly (tested), for a quarter of the ReLU work.
    The convolution has no bias: the BatchNorm right after it subtracts each channel's mean (of the
    batch, or the running mean that would include the bias), so a bias cancels exactly, gets a zero
    gradient, and only costs time.
    State dicts saved with the bias still load: it is folded into the running mean (tested).
    """
    block = ConvBlock(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.MaxPool2d(2),
        nn.ReLU(),
    )
    block._register_load_state_dict_pre_hook(_fold_conv_bias)
    return block


def _fold_conv_bias(state_dict: dict, prefix: str, *args) -> None:
    """Load a conv block saved with a convolution bias: running_mean - bias gives the same outputs."""
    bias = state_dict.pop(f"{prefix}0.bias", None)
    if bias is not None and f"{prefix}1.running_mean" in state_dict:
        state_dict[f"{prefix}1.running_mean"] = state_dict[f"{prefix}1.running_mean"] - bias


@BACKBONES.register("conv4")
def conv4(in_channels: int = 1, hidden: int = 64, out_channels: int = 64) -> ConvNet:
    """The standard four-block convolutional embedding; a 28x28 input gives a 64-d vector."""
    return ConvNet(
        conv_block(in_channels, hidden),
        conv_block(hidden, hidden),
        conv_block(hidden, hidden),
        conv_block(hidden, out_channels),
        nn.Flatten(),
    )


@BACKBONES.register("mlp")
def mlp(in_features: int = 784, hidden: tuple[int, ...] = (40, 40), out_features: int | None = None) -> nn.Sequential:
    """A fully connected ReLU network on flattened inputs (the MAML sinusoid net is ``mlp(1, (40, 40), 1)``)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


mlp.flat_input = True  # type: ignore[attr-defined]  # built from the input size, not its channels


class SpatialMean(nn.Module):
    """Average over all spatial positions: ``(B, C, H, W)`` -> ``(B, C)``."""

    def forward(self, x):
        return x.mean(dim=(-2, -1))


@BACKBONES.register("conv4-strided")
def conv4_strided(in_channels: int = 1, hidden: int = 64) -> ConvNet:
    """MAML's Omniglot network (Finn et al. 2017, Section 5.2): four 3x3 convolutions with stride 2
    instead of max-pooling, each with BatchNorm and ReLU, then the mean over spatial positions."""
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [
            StridedConv2d(in_channels if i == 0 else hidden, hidden),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
        ]
    return ConvNet(*layers, SpatialMean())


@BACKBONES.register("conv4-maps")
def conv4_maps(in_channels: int = 1, hidden: int = 64) -> ConvNet:
    """Relation Networks' embedding module (Sung et al. 2018, Figure 2): two unpadded conv blocks
    with max-pooling, then two padded ones without; 28x28 inputs give 64x5x5 feature maps."""

    def block(cin: int, padding: int, pool: bool) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, hidden, 3, padding=padding),
            nn.BatchNorm2d(hidden),
            *([nn.MaxPool2d(2)] if pool else []),
            nn.ReLU(),
        ]  # ReLU after pooling, as in conv_block

    return ConvNet(
        *block(in_channels, 0, True), *block(hidden, 0, True), *block(hidden, 1, False), *block(hidden, 1, False)
    )


@BACKBONES.register("pixels")
def pixels(in_channels: int = 1) -> nn.Module:
    """No learned embedding: the flattened pixels, as the memory-augmented network of Santoro et al. 2016 reads them."""
    return nn.Flatten()


@BACKBONES.register("adapter")
def adapter(in_features: int = 384, hidden: int = 256) -> nn.Module:
    """A residual adapter over flat features (e.g. sentence embeddings): the identity until trained."""
    return ResidualAdapter(in_features, hidden)


adapter.flat_input = True  # type: ignore[attr-defined]
