"""3x3 convolutions with stride 2 and padding 1 (MAML's Omniglot network) as C kernels for small batches.

On the few images of a task, oneDNN's convolutions spend much of their time outside the arithmetic (layer 4 of
the strided conv4, 4x4 maps, runs at a fraction of its 28x28 rate; ``benchmarks/maml_peers.py``). The kernels in
``kernels/strided_conv.c`` compute the forward pass, the input gradient and the weight gradient directly on
channels-last maps: each is a register-tiled matrix product whose rows are gathered from the maps as it goes.

The three are dispatcher operators (``torch.compile`` calls them as external kernels) whose Autograd kernels
record one node per ``torch.func`` level, as PyTorch's own operators do, and whose derivatives are again the
three (the input gradient is linear in the output gradient and the weight, the weight gradient in the input
and the output gradient): :func:`conv` has derivatives of every order, under transforms and compiled.
:class:`StridedConv2d` uses them once :meth:`~learntolearn.nn.backbones.ConvNet.use_native_convolutions` sets
``native`` and a call qualifies (float32 on the CPU outside autocast, channels a multiple of 64); otherwise, or
without a C compiler (:mod:`learntolearn.nn.native`), it is ``nn.Conv2d``.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from functools import cache

import torch
from torch import Tensor, nn
from torch._functorch.utils import enable_single_level_autograd_function
from torch.autograd.function import _SingleLevelFunction
from torch.utils.flop_counter import register_flop_formula

from learntolearn.nn import native

_i64, _int = ctypes.c_int64, ctypes.c_int
_f, _s = ctypes.c_void_p, native.i64_p  # data pointers passed as integers: cheaper than ctypes.cast per call
SIGNATURES = {
    "strided_conv_forward": [_f, _i64, _i64, _i64, _i64, _f, _s, _i64, _f, _f, _int],
    "strided_conv_input_grad": [_f, _i64, _i64, _i64, _i64, _f, _s, _i64, _f, _int],
    "strided_conv_weight_grad": [_f, _i64, _i64, _i64, _i64, _f, _i64, _f, _s, _int],
}
#: channel counts must be multiples of this (the kernels' register tile) and at most MAX_CHANNELS
CHANNEL_MULTIPLE, MAX_CHANNELS = 64, 1024


@cache
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they cannot be built."""
    return native.build("strided_conv.c", SIGNATURES)


def _lib() -> ctypes.CDLL:
    lib = kernels()
    assert lib is not None, "StridedConv2d calls the kernels only where they were built"
    return lib


def _strides(t: Tensor):
    return (ctypes.c_int64 * 4)(*t.stride())


def _maps(t: Tensor) -> Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def _empty(like: Tensor, shape: tuple[int, ...]) -> Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


def _output_size(size: int) -> int:
    return (size + 1) // 2


_LIBRARY = torch.library.Library("learntolearn", "FRAGMENT")
_LIBRARY.define("strided_conv(Tensor x, Tensor weight, Tensor? bias) -> Tensor")
_LIBRARY.define("strided_conv_input_grad(Tensor grad_y, Tensor weight, int height, int width) -> Tensor")
_LIBRARY.define("strided_conv_weight_grad(Tensor x, Tensor grad_y) -> Tensor")
_OPS = torch.ops.learntolearn


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.conv2d(x, weight, bias, stride=2, padding=1)`` for a 3x3 ``weight``, channels-last output."""
    x = _maps(x)
    n, channels, height, width = x.shape
    y = _empty(x, (n, weight.shape[0], _output_size(height), _output_size(width)))
    bias = None if bias is None else bias.contiguous()
    _lib().strided_conv_forward(
        x.data_ptr(), n, height, width, channels, weight.data_ptr(), _strides(weight), weight.shape[0],
        None if bias is None else bias.data_ptr(), y.data_ptr(), torch.get_num_threads(),
    )  # fmt: skip
    return y


def _forward_shape(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    n, _, height, width = x.shape
    return _empty(x, (n, weight.shape[0], _output_size(height), _output_size(width)))


def _input_grad(grad_y: Tensor, weight: Tensor, height: int, width: int) -> Tensor:
    """The gradient of the forward pass with respect to its ``height`` x ``width`` input."""
    grad_y = _maps(grad_y)
    n, out_channels = grad_y.shape[:2]
    grad_x = _empty(grad_y, (n, weight.shape[1], height, width))
    _lib().strided_conv_input_grad(
        grad_y.data_ptr(), n, height, width, weight.shape[1], weight.data_ptr(), _strides(weight),
        out_channels, grad_x.data_ptr(), torch.get_num_threads(),
    )  # fmt: skip
    return grad_x


def _input_grad_shape(grad_y: Tensor, weight: Tensor, height: int, width: int) -> Tensor:
    return _empty(grad_y, (grad_y.shape[0], weight.shape[1], height, width))


def _weight_grad(x: Tensor, grad_y: Tensor) -> Tensor:
    """The gradient of the forward pass with respect to its weight, channels-last like the model's weights."""
    x, grad_y = _maps(x), _maps(grad_y)
    n, channels, height, width = x.shape
    grad_weight = _empty(x, (grad_y.shape[1], channels, 3, 3))
    _lib().strided_conv_weight_grad(
        x.data_ptr(), n, height, width, channels, grad_y.data_ptr(), grad_y.shape[1],
        grad_weight.data_ptr(), _strides(grad_weight), torch.get_num_threads(),
    )  # fmt: skip
    return grad_weight


def _weight_grad_shape(x: Tensor, grad_y: Tensor) -> Tensor:
    return _empty(x, (grad_y.shape[1], x.shape[1], 3, 3))


_KERNELS: list[tuple[str, Callable[..., Tensor], Callable[..., Tensor]]] = [
    ("strided_conv", _forward, _forward_shape),
    ("strided_conv_input_grad", _input_grad, _input_grad_shape),
    ("strided_conv_weight_grad", _weight_grad, _weight_grad_shape),
]
for _name, _kernel, _shape in _KERNELS:
    _LIBRARY.impl(_name, _kernel, "CPU")
    torch.library.register_fake(f"learntolearn::{_name}", _shape, lib=_LIBRARY)


def _convolution_flops(grad_or_output_shape, channels: int) -> int:
    """Multiply-adds x 2 of one of the three products: every output (or output-gradient) entry takes 9 x channels."""
    return 2 * math.prod(grad_or_output_shape) * 9 * channels


@register_flop_formula(_OPS.strided_conv)
def _(x_shape, w_shape, bias_shape, *, out_shape, **kwargs) -> int:
    return _convolution_flops(out_shape, x_shape[1])


@register_flop_formula(_OPS.strided_conv_input_grad)
def _(grad_shape, w_shape, *args, out_shape, **kwargs) -> int:
    return _convolution_flops(grad_shape, w_shape[1])


@register_flop_formula(_OPS.strided_conv_weight_grad)
def _(x_shape, grad_shape, *, out_shape, **kwargs) -> int:
    return _convolution_flops(grad_shape, x_shape[1])


def _below_autograd(keyset, op, *args):
    # past this level's Autograd key only, with gradients on (autograd.Function turns them off in forward): under
    # torch.func.grad the outer levels' Autograd kernels then record the operator too, as with PyTorch's own
    with torch.enable_grad():
        return op.redispatch(keyset & torch._C._after_autograd_keyset, *args)


class _Conv(_SingleLevelFunction):
    @staticmethod
    def forward(keyset, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _below_autograd(keyset, _OPS.strided_conv.default, x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = _OPS.strided_conv_input_grad(grad, weight, x.shape[2], x.shape[3]) if ctx.needs_input_grad[1] else None
        grad_weight = _OPS.strided_conv_weight_grad(x, grad) if ctx.needs_input_grad[2] else None
        grad_bias = grad.sum((0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return None, grad_x, grad_weight, grad_bias


class _InputGrad(_SingleLevelFunction):
    """grad_x = B(grad_y, weight), linear in each: <B(grad_y, weight), h> = <grad_y, conv(h, weight)>."""

    @staticmethod
    def forward(keyset, grad_y: Tensor, weight: Tensor, height: int, width: int) -> Tensor:
        return _below_autograd(keyset, _OPS.strided_conv_input_grad.default, grad_y, weight, height, width)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs[1:3])

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_y, weight = ctx.saved_tensors
        d_grad_y = _OPS.strided_conv(grad, weight, None) if ctx.needs_input_grad[1] else None
        d_weight = _OPS.strided_conv_weight_grad(grad, grad_y) if ctx.needs_input_grad[2] else None
        return None, d_grad_y, d_weight, None, None


class _WeightGrad(_SingleLevelFunction):
    """grad_weight = G(x, grad_y), linear in each: <G(x, grad_y), h> = <grad_y, conv(x, h)>."""

    @staticmethod
    def forward(keyset, x: Tensor, grad_y: Tensor) -> Tensor:
        return _below_autograd(keyset, _OPS.strided_conv_weight_grad.default, x, grad_y)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs[1:])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, grad_y = ctx.saved_tensors
        d_x = _OPS.strided_conv_input_grad(grad_y, grad, x.shape[2], x.shape[3]) if ctx.needs_input_grad[1] else None
        d_grad_y = _OPS.strided_conv(x, grad, None) if ctx.needs_input_grad[2] else None
        return None, d_x, d_grad_y


def _autograd_kernel(function: type[_SingleLevelFunction]):
    # records one autograd node at this kernel's level, as PyTorch's own operators' Autograd kernels do: torch.func's
    # transforms have already unwrapped the tensors to this level, and each level runs the kernel once (the
    # single-level functions are what torch.func itself builds for autograd.Function, one per level)
    def kernel(keyset, *args):
        if not torch.is_grad_enabled():  # e.g. inside compiled graphs: nothing to record
            return function.forward(keyset, *args)
        with enable_single_level_autograd_function():
            return function.apply(keyset, *args)

    return kernel


for _name, _function in [
    ("strided_conv", _Conv),
    ("strided_conv_input_grad", _InputGrad),
    ("strided_conv_weight_grad", _WeightGrad),
]:
    _LIBRARY.impl(_name, _autograd_kernel(_function), "Autograd", with_keyset=True)


def conv(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv2d(x, weight, bias, stride=2, padding=1)`` through the kernels, differentiable to every order."""
    return _OPS.strided_conv(x, weight, bias)


def qualifies(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`strided_conv` computes this call (float32 CPU tensors outside autocast, channels that fit;
    the kernels' availability is checked when ``native`` is set)."""
    return (
        x.dim() == 4
        and x.dtype == weight.dtype == torch.float32
        and x.device.type == weight.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
        and all(c % CHANNEL_MULTIPLE == 0 and c <= MAX_CHANNELS for c in weight.shape[:2])
    )


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)``; with ``native`` set, qualifying calls run
    :func:`conv` (same values up to float rounding)."""

    native = False

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, stride=2, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.native and qualifies(x, self.weight):
            return conv(x, self.weight, self.bias)
        return super().forward(x)
