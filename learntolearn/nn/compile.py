"""``torch.compile`` for the many small graphs of meta-learning, without Inductor's boolean masks.

ReLU's backward is ``threshold_backward(grad, out, 0) = where(out <= 0, 0, grad)``. When Inductor
keeps that mask between kernels it stores it as a ``bool`` tensor, and its vectorised CPU code for
storing booleans is slow (``benchmarks/compile_kernels.py`` measures it against eager).
:func:`compile_without_bool_masks` compiles with Inductor after rewriting ``threshold_backward`` as
``grad * max(sign(out - threshold), 0)``, which equals it for every finite ``grad`` and keeps the mask
in float arithmetic (``benchmarks/maml_peers.py`` measures the gain). It also leaves max-pooling's
backward to PyTorch's own kernel, which Inductor otherwise replaces by slower generated code
(``benchmarks/compile_kernels.py``).

A convolution of a one-channel input (the first layer on grey images) runs in oneDNN at a few GFLOP/s on
the small batches of a task; in the graphs it is computed instead as its input's patches (gathered by
generated code) times the weight matrix, and its weight gradient likewise (:func:`patch_convolution`).

The graphs' wrapper code, which allocates buffers and calls the kernels, is generated in C++ (Inductor's
``cpp_wrapper``) rather than Python, which pays with a few hundred small kernels per graph
(``benchmarks/compiled_maml.py``).

:func:`compile_method` compiles a bound method so that its instance has a cache of its own: Dynamo
keeps compiled graphs per code object, so instances of one class would share the method's cache and,
past Dynamo's recompile limit of 8 (a sweep in one process), silently run eagerly.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor


def threshold_backward_in_floats(grad: Tensor, out: Tensor, threshold: float) -> Tensor:
    """``where(out <= threshold, 0, grad)`` without a boolean intermediate (equal for finite ``grad``)."""
    return grad * (out - threshold).sign().clamp_min(0)


@torch.library.custom_op("learntolearn::max_pool2d_backward", mutates_args=())
def max_pool2d_backward_eager(
    grad: Tensor,
    x: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool,
    indices: Tensor,
) -> Tensor:
    """``aten.max_pool2d_with_indices_backward``, opaque to Inductor, which calls it as an external kernel."""
    return torch.ops.aten.max_pool2d_with_indices_backward.grad_input(
        grad, x, kernel_size, stride, padding, dilation, ceil_mode, indices, grad_input=torch.empty_like(x)
    )


@max_pool2d_backward_eager.register_fake
def _(grad: Tensor, x: Tensor, *args) -> Tensor:
    return torch.empty_like(x)


def _max_pool2d_backward_as_eager(
    grad: Tensor, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool, indices: Tensor
) -> Tensor:
    return max_pool2d_backward_eager(
        grad, x, list(kernel_size), list(stride), list(padding), list(dilation), ceil_mode, indices
    )


def one_channel_patches(
    x: Tensor, kernel: list[int], stride: list[int], padding: list[int]
) -> tuple[Tensor, tuple[int, int]]:
    """``(n, 1, h, w)`` -> each output position's input patch, ``(n * out_h * out_w, kernel_h * kernel_w)``, and
    ``(out_h, out_w)``."""
    padded = torch.nn.functional.pad(x[:, 0], (padding[1], padding[1], padding[0], padding[0]))
    out_h = (padded.shape[1] - kernel[0]) // stride[0] + 1
    out_w = (padded.shape[2] - kernel[1]) // stride[1] + 1
    taps = [
        padded[:, i : i + stride[0] * (out_h - 1) + 1 : stride[0], j : j + stride[1] * (out_w - 1) + 1 : stride[1]]
        for i in range(kernel[0])
        for j in range(kernel[1])
    ]
    return torch.stack(taps, dim=-1).reshape(-1, kernel[0] * kernel[1]), (out_h, out_w)


def is_plain_one_channel(x: Tensor, weight: Tensor, dilation, transposed: bool, groups: int) -> bool:
    """Whether a convolution is a plain 2-d one of a one-channel input (what :func:`patch_convolution` computes)."""
    return x.dim() == 4 and weight.shape[1] == 1 and groups == 1 and not transposed and all(d == 1 for d in dilation)


def patch_convolution(x: Tensor, weight: Tensor, bias, stride, padding, dilation, transposed, output_padding, groups):
    """``aten.convolution`` of a one-channel input as patches times the weight matrix (NotImplemented otherwise);
    the output is channels-last, as oneDNN gives it for this model."""
    if not is_plain_one_channel(x, weight, dilation, transposed, groups):
        return NotImplemented
    patches, (height, width) = one_channel_patches(x, list(weight.shape[2:]), list(stride), list(padding))
    matrix = weight.reshape(weight.shape[0], -1).t()
    out = patches @ matrix if bias is None else torch.addmm(bias, patches, matrix)
    return out.view(x.shape[0], height, width, -1).permute(0, 3, 1, 2)


def patch_convolution_backward(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
):
    """The weight and bias gradients of :func:`patch_convolution` (NotImplemented if the input's is asked for)."""
    if output_mask[0] or not is_plain_one_channel(x, weight, dilation, transposed, groups):
        return NotImplemented
    rows = grad.permute(0, 2, 3, 1).reshape(-1, weight.shape[0])
    grad_weight = None
    if output_mask[1]:
        patches, _ = one_channel_patches(x, list(weight.shape[2:]), list(stride), list(padding))
        grad_weight = (rows.t() @ patches).view(weight.shape)
    grad_bias = rows.sum(0) if output_mask[2] else None
    return None, grad_weight, grad_bias


def _inductor_without_bool_masks(
    graph: torch.fx.GraphModule, example_inputs: list, cpp_wrapper: bool = True
) -> Callable:
    from torch._functorch import config as functorch_config
    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.decomposition import select_decomp_table

    decompositions: dict[Any, Callable] = {
        **select_decomp_table(),
        torch.ops.aten.threshold_backward.default: threshold_backward_in_floats,
        torch.ops.aten.max_pool2d_with_indices_backward.default: _max_pool2d_backward_as_eager,
        torch.ops.aten.convolution.default: patch_convolution,
        torch.ops.aten.convolution_backward.default: patch_convolution_backward,
    }
    # AOTAutograd's cache keys ignore the decompositions, so it would return a graph compiled without this one;
    # Inductor's own cache sees the decomposed graph and stays on
    with functorch_config.patch(enable_autograd_cache=False):
        compiled = compile_fx(
            graph, example_inputs, decompositions=decompositions, config_patches={"cpp_wrapper": cpp_wrapper}
        )
    return cast(Callable, compiled)


def compile_without_bool_masks(fn: Callable, cpp_wrapper: bool = True) -> Callable:
    """``torch.compile(fn)`` with Inductor, ReLU's backward masks kept as floats (see the module docstring), and
    static shapes: a new shape compiles a new graph instead of making the old one shape-generic.
    ``cpp_wrapper=False`` keeps Inductor's Python wrapper code (for comparison)."""
    if cpp_wrapper:
        return torch.compile(fn, backend=_inductor_without_bool_masks, dynamic=False)
    return torch.compile(
        fn, backend=lambda graph, inputs: _inductor_without_bool_masks(graph, inputs, False), dynamic=False
    )


def compile_method(method: Callable, cpp_wrapper: bool = True) -> Callable:
    """:func:`compile_without_bool_masks` of a bound method, on a private copy of its code (module docstring)."""
    function = method.__func__  # type: ignore[attr-defined]  # a bound method
    private = types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    private.__kwdefaults__ = function.__kwdefaults__
    return compile_without_bool_masks(types.MethodType(private, method.__self__), cpp_wrapper)  # type: ignore[attr-defined]
