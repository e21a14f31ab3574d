"""BatchNorm, 2x2 max-pooling and ReLU in training mode, fused into a few passes over memory.

A conv block's BatchNorm, pooling and ReLU cost PyTorch about ten full-size passes over memory forward
and backward on channels-last CPU tensors (statistics, normalise, pool; zero-fill and scatter the
pooling gradient, BatchNorm's sums and its input gradient), and its channels-last BatchNorm sums in
single precision. The C kernels in ``kernels/norm_pool.c`` read the input three times forward (twice
for the statistics, once to pool) and once backward, writing only the input gradient at full size,
and accumulate in double:

* forward: ``mean``, ``var`` (biased) over N, H, W; ``y = x * scale + shift`` with ``scale = weight /
  sqrt(var + eps)``; each 2x2 window keeps its largest ``y`` (the first one on ties, NaN wins, as
  PyTorch's pooling), and the ReLU of it. The window's ``x`` and position are kept for backward.
* backward: the gradient reaching ``y`` is ``g = grad_out`` (where the output is positive) at each
  window's chosen position and zero elsewhere, so BatchNorm's backward, ``weight * invstd * (g -
  mean(g) - xhat * mean(g * xhat))``, needs only sums over the pooled cells and one pass over ``x``.

On a first block, whose input is an image of a few channels that needs no gradient, the convolution
is taken in as well and its full-size output is never stored: the convolution is linear, so its
output's mean and variance per channel follow from the mean and covariance of the input's 3x3 patches
(one pass over the small image), the pooling pass computes it on the fly, and its weight gradient is
``k * sum(g * chosen patch) + slope * sum(patch * y) + offset * sum(patch)``, whose last two sums
again follow from the patches' moments.

The kernels are compiled with the system C compiler on first use and cached per CPU instruction set
(``$XDG_CACHE_HOME/learntolearn/kernels``); without a compiler, :func:`norm_pool_relu` runs PyTorch's
own operators, with the same results up to float rounding. BatchNorm, pooling and ReLU are twice
differentiable (:class:`_NormPoolReLUBackward`), for second-order MAML; a first block with its
convolution taken in has a first derivative only, so that is not done within :func:`twice_differentiable`.
"""

from __future__ import annotations

import contextvars
import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from learntolearn.nn import native

SOURCE = native.KERNELS / "norm_pool.c"
_float_p, _double_p = native.float_p, native.double_p
_i64, _int = ctypes.c_int64, ctypes.c_int
SIGNATURES: dict[str, list] = {
    "batch_statistics": [_float_p, _i64, _i64, ctypes.c_double, _float_p, _float_p, _float_p, _int],
    "normalise_pool_relu": [_float_p, _i64, _i64, _i64, _i64, _float_p, _float_p, _float_p, _float_p, _float_p, _int],
    "gradient_sums": [_float_p, _float_p, _float_p, _i64, _i64, _float_p, _float_p, _double_p, _double_p, _int],
    "input_gradient": [_float_p] * 4 + [_i64] * 4 + [_float_p] * 6 + [_int],
    "double_backward_sums": [_float_p] * 5 + [_i64] * 4 + [_float_p] * 3 + [_double_p] * 3 + [_int],
    "patch_moments": [_float_p] + [_i64] * 4 + [_double_p, _double_p, _int],
    "conv_normalise_pool_relu": [_float_p] + [_i64] * 4 + [_float_p, _i64] + [_float_p] * 5 + [_int],
    "chosen_patch_gradient": [_float_p] * 4 + [_i64] * 5 + [_double_p, _int],
}
#: the most input channels for which a block's convolution is recomputed in the fused kernels instead of stored
MAX_RECOMPUTED_CHANNELS = 4
_TWICE_DIFFERENTIABLE = contextvars.ContextVar("twice_differentiable", default=False)


@contextmanager
def twice_differentiable(enabled: bool = True) -> Iterator[None]:
    """Within it, conv blocks run operators with a second derivative: a first block's convolution is
    PyTorch's, not recomputed in the kernels (which have a first derivative only). Inner loops whose
    gradients are differentiated again (second-order MAML's support passes) run in it."""
    token = _TWICE_DIFFERENTIABLE.set(enabled)
    try:
        yield
    finally:
        _TWICE_DIFFERENTIABLE.reset(token)


@cache
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels (:func:`learntolearn.nn.native.build`); None where they cannot be built."""
    return native.build(SOURCE.name, SIGNATURES)


def _loaded() -> ctypes.CDLL:
    lib = kernels()
    assert lib is not None, "the fused path runs only where can_fuse found the kernels"
    return lib


def _p(t: Tensor, kind=_float_p):
    return native.pointer(t, kind)


class _NormPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float):
        lib, threads = _loaded(), torch.get_num_threads()
        n, c, h, w = x.shape
        mean, var, invstd = (x.new_empty(c) for _ in range(3))
        lib.batch_statistics(_p(x), n * h * w, c, eps, _p(mean), _p(var), _p(invstd), threads)
        scale = (weight.detach() * invstd).contiguous()
        shift = (bias.detach() - mean * scale).contiguous()
        pooled = (n, c, h // 2, w // 2)
        out = torch.empty(pooled, memory_format=torch.channels_last)
        chosen_x = torch.empty_like(out)
        position = torch.empty_like(out)
        lib.normalise_pool_relu(_p(x), n, h, w, c, _p(scale), _p(shift), _p(out), _p(chosen_x), _p(position), threads)
        ctx.save_for_backward(x, out, chosen_x, position, mean, invstd, weight)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_mean, _grad_var):
        x, out, chosen_x, position, mean, invstd, weight = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = _NormPoolReLUBackward.apply(
            grad_out, x, weight, out.detach(), chosen_x, position, mean, invstd
        )
        return grad_x, grad_weight, grad_bias, None


class _NormPoolReLUBackward(torch.autograd.Function):
    """:class:`_NormPoolReLU`'s backward as a function of the upstream gradient, ``x`` and the weight, with its
    own backward, so that second-order methods differentiate through the fused block.

    Per channel, with ``M`` entries, ``s = invstd``, ``g`` the gradient passing the ReLU at each window's
    chosen entry, ``a = sum(g) / M``, ``b = sum(g * xhat) / M``, the backward is ``grad_x = weight * s *
    (g - a - xhat * b)``, ``grad_weight = M * b``, ``grad_bias = M * a``. Given the gradients ``u``, ``u_w``
    and ``u_b`` reaching those three, and ``U1 = sum(u)``, ``U2 = sum(u * xhat)``, ``P = sum(g * u)`` (u at
    the chosen entries), ``T = P - a * U1 - b * U2``:

    * upstream: ``weight * s * (u - U1 / M - xhat * U2 / M) + u_w * xhat + u_b`` at the chosen entries,
      where the ReLU passed;
    * weight: ``s * T``;
    * x: ``s * (F - mean(F) - xhat * mean(F * xhat)) - weight * T * s^2 * xhat / M`` with ``F = g * (u_w -
      weight * s * U2 / M) - weight * s * b * u``, that is ``k * g + ucoef * u + slope * x + offset``.

    The pooling winners and the ReLU's mask are piecewise constant, so they contribute nothing (as in
    PyTorch's own double backward).
    """

    @staticmethod
    def forward(ctx, grad_out, x, weight, out, chosen_x, position, mean, invstd):
        lib, threads = _loaded(), torch.get_num_threads()
        n, c, h, w = x.shape
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        sum_g, sum_gx = _gradient_sums(lib, grad_out, out, chosen_x, mean, invstd, threads)
        k, slope, offset = _gradient_coefficients(weight, mean, invstd, sum_g, sum_gx, n * h * w)
        grad_x = torch.empty_like(x, memory_format=torch.channels_last)
        lib.input_gradient(
            _p(x), _p(grad_out), _p(out), _p(position), n, h, w, c, _p(k), _p(slope), _p(offset), _p(grad_x),
            None, None, threads,
        )  # fmt: skip
        ctx.save_for_backward(grad_out, x, weight, out, chosen_x, position, mean, invstd, sum_g, sum_gx)
        return grad_x, sum_gx.float(), sum_g.float()

    @staticmethod
    @once_differentiable
    def backward(ctx, u: Tensor, u_weight: Tensor, u_bias: Tensor):
        grad_out, x, weight, out, chosen_x, position, mean, invstd, sum_g, sum_gx = ctx.saved_tensors
        lib, threads = _loaded(), torch.get_num_threads()
        n, c, h, w = x.shape
        count = n * h * w
        u = u.contiguous(memory_format=torch.channels_last)
        u_chosen = torch.empty_like(out)
        sum_u, sum_uxhat, sum_gu = (torch.empty(c, dtype=torch.float64) for _ in range(3))
        lib.double_backward_sums(
            _p(x), _p(u), _p(grad_out), _p(out), _p(position), n, h, w, c, _p(mean), _p(invstd), _p(u_chosen),
            _p(sum_u, _double_p), _p(sum_uxhat, _double_p), _p(sum_gu, _double_p), threads,
        )  # fmt: skip
        s, gamma, mu = invstd.double(), weight.detach().double(), mean.double()
        a, b = sum_g / count, sum_gx / count
        u_w, u_b = u_weight.double(), u_bias.double()
        t = sum_gu - a * sum_u - b * sum_uxhat
        gs = gamma * s
        grad_upstream = grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:  # weight * s * u_chosen + slope * chosen_x + offset where the ReLU passed
            slope_x = (u_w - gs * sum_uxhat / count) * s
            offset_x = u_b - gs * sum_u / count - slope_x * mu
            linear = u_chosen * _per_channel(gs) + chosen_x * _per_channel(slope_x) + _per_channel(offset_x)
            grad_upstream = torch.where((out > 0) | out.isnan(), linear, 0)
        if ctx.needs_input_grad[1]:
            a_u = u_w - gs * sum_uxhat / count
            xhat_coef = -s * (b * a_u - gs * b * sum_uxhat / count) - gamma * t * s * s / count
            constant = -s * (a * a_u - gs * b * sum_u / count)
            slope64 = xhat_coef * s
            k, ucoef, slope, offset = (
                (s * a_u).float(),
                (-gs * s * b).float(),
                slope64.float(),
                (constant - slope64 * mu).float(),
            )
            grad_x = torch.empty_like(x, memory_format=torch.channels_last)
            lib.input_gradient(
                _p(x), _p(grad_out), _p(out), _p(position), n, h, w, c, _p(k), _p(slope), _p(offset),
                _p(grad_x), _p(u), _p(ucoef), threads,
            )  # fmt: skip
        if ctx.needs_input_grad[2]:
            grad_weight = (s * t).float()
        return grad_upstream, grad_x, grad_weight, None, None, None, None, None


def _per_channel(values: Tensor) -> Tensor:
    return values.float().view(1, -1, 1, 1)


class _ConvNormPoolReLU(torch.autograd.Function):
    """As :class:`_NormPoolReLU` with the block's convolution recomputed from its small input in each pass."""

    @staticmethod
    def forward(ctx, padded: Tensor, conv_weight: Tensor, weight: Tensor, bias: Tensor, eps: float):
        lib, threads = _loaded(), torch.get_num_threads()
        n, hp, wp, cin = padded.shape
        h, w, c = hp - 2, wp - 2, conv_weight.shape[0]
        taps = conv_weight.detach().permute(2, 3, 1, 0).reshape(9 * cin, c).contiguous()
        patch_mean, patch_cov = (
            torch.empty(9 * cin, dtype=torch.float64),
            torch.empty(9 * cin, 9 * cin, dtype=torch.float64),
        )
        lib.patch_moments(_p(padded), n, h, w, cin, _p(patch_mean, _double_p), _p(patch_cov, _double_p), threads)
        taps64 = taps.double()  # the convolution is linear: its output's moments follow from the patches'
        mean64 = patch_mean @ taps64
        var64 = (taps64 * (patch_cov @ taps64)).sum(0).clamp_min(0)
        mean, var, invstd = mean64.float(), var64.float(), (var64 + eps).rsqrt().float()
        scale = (weight.detach() * invstd).contiguous()
        shift = (bias.detach() - mean * scale).contiguous()
        out = torch.empty((n, c, h // 2, w // 2), memory_format=torch.channels_last)
        chosen, position = torch.empty_like(out), torch.empty_like(out)
        lib.conv_normalise_pool_relu(
            _p(padded), n, h, w, cin, _p(taps), c, _p(scale), _p(shift), _p(out), _p(chosen), _p(position), threads
        )
        ctx.save_for_backward(padded, taps64, patch_mean, patch_cov, out, chosen, position, mean, invstd, weight)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, _grad_mean, _grad_var):
        padded, taps64, patch_mean, patch_cov, out, chosen, position, mean, invstd, weight = ctx.saved_tensors
        lib, threads = _loaded(), torch.get_num_threads()
        n, hp, wp, cin = padded.shape
        h, w, c = hp - 2, wp - 2, taps64.shape[1]
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        sum_g, sum_gx = _gradient_sums(lib, grad_out, out, chosen, mean, invstd, threads)
        k, slope, offset = _gradient_coefficients(weight, mean, invstd, sum_g, sum_gx, n * h * w)
        chosen_patches = torch.empty(9 * cin, c, dtype=torch.float64)
        lib.chosen_patch_gradient(
            _p(padded), _p(grad_out), _p(out), _p(position), n, h, w, cin, c, _p(chosen_patches, _double_p), threads
        )
        # sum over positions of patch * (k g + slope y + offset), with y = patch . taps (see the C source)
        count = n * h * w
        patch_times_output = count * (patch_cov + torch.outer(patch_mean, patch_mean)) @ taps64
        grad_taps = (
            k.double() * chosen_patches
            + slope.double() * patch_times_output
            + offset.double() * count * patch_mean[:, None]
        )
        grad_conv = grad_taps.float().reshape(3, 3, cin, c).permute(3, 2, 0, 1)
        return None, grad_conv, sum_gx.float(), sum_g.float(), None


def _gradient_sums(lib, grad_out: Tensor, out: Tensor, chosen: Tensor, mean: Tensor, invstd: Tensor, threads: int):
    """sum(g) and sum(g * xhat) over the pooled cells, g the gradient that passes the ReLU (float64)."""
    c = out.shape[1]
    sum_g, sum_gx = (torch.empty(c, dtype=torch.float64) for _ in range(2))
    lib.gradient_sums(
        _p(grad_out),
        _p(out),
        _p(chosen),
        out.numel() // c,
        c,
        _p(mean),
        _p(invstd),
        _p(sum_g, _double_p),
        _p(sum_gx, _double_p),
        threads,
    )
    return sum_g, sum_gx


def _gradient_coefficients(weight: Tensor, mean: Tensor, invstd: Tensor, sum_g: Tensor, sum_gx: Tensor, count: int):
    """BatchNorm's input gradient is ``k * g + slope * x + offset`` per channel: k, slope and offset."""
    k = weight.detach().double() * invstd.double()
    slope = -k * invstd.double() * sum_gx / count
    offset = -k * sum_g / count - slope * mean.double()
    return k.float(), slope.float(), offset.float()


def can_fuse(x: Tensor, norm: nn.BatchNorm2d) -> bool:
    """Whether :func:`norm_pool_relu` runs the fused kernels on ``x``: a training step in float32 on the CPU."""
    return (
        norm.training
        and norm.affine
        and torch.is_grad_enabled()
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.shape[2] >= 2
        and x.shape[3] >= 2
        and x.is_contiguous(memory_format=torch.channels_last)
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and norm.weight.dtype == torch.float32
        and kernels() is not None
    )


def norm_pool_relu(x: Tensor, norm: nn.BatchNorm2d) -> Tensor:
    """``relu(max_pool2d(norm(x), 2))``, with ``norm``'s running statistics updated as in training mode."""
    if not can_fuse(x, norm):
        return F.relu(F.max_pool2d(norm(x), 2))
    out, mean, var = _NormPoolReLU.apply(x, norm.weight, norm.bias, norm.eps)
    _update_running_statistics(norm, mean, var, x.numel() // x.shape[1])
    return out


def recomputes_conv(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether :func:`conv_norm_pool_relu` recomputes ``conv`` in the kernels: few input channels, which need
    no gradient (images), and the conv block's 3x3 convolution with padding 1 and no bias."""
    return (
        conv.in_channels <= MAX_RECOMPUTED_CHANNELS
        and not x.requires_grad
        and conv.bias is None
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.weight.dtype == torch.float32
    )


def conv_norm_pool_relu(x: Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d) -> Tensor:
    """``relu(max_pool2d(norm(conv(x)), 2))``; on few input channels the convolution's full-size output is
    never stored (recomputed from ``x`` in each pass), else :func:`norm_pool_relu` after ``conv`` (always within
    :func:`twice_differentiable`)."""
    if not (x.dim() == 4 and not _TWICE_DIFFERENTIABLE.get() and recomputes_conv(x, conv) and can_fuse(x, norm)):
        return norm_pool_relu(conv(x), norm)
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1)).contiguous()  # (N, H+2, W+2, Cin)
    out, mean, var = _ConvNormPoolReLU.apply(padded, conv.weight, norm.weight, norm.bias, norm.eps)
    _update_running_statistics(norm, mean, var, x.shape[0] * x.shape[2] * x.shape[3])
    return out


def _update_running_statistics(norm: nn.BatchNorm2d, mean: Tensor, var: Tensor, count: int) -> None:
    if norm.track_running_stats and norm.running_mean is not None and norm.running_var is not None:
        with torch.no_grad():
            norm.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)  # type: ignore[arg-type]
            norm.running_mean.lerp_(mean, momentum)
            norm.running_var.lerp_(var * count / max(count - 1, 1), momentum)
