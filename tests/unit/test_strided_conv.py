"""The C kernels of 3x3 stride-2 convolutions (learntolearn.nn.strided_conv) against PyTorch's convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from learntolearn.nn import strided_conv
from learntolearn.nn.backbones import conv4_strided
from learntolearn.nn.strided_conv import StridedConv2d, conv, qualifies

pytestmark = pytest.mark.skipif(strided_conv.kernels() is None, reason="no C compiler to build the kernels")


def reference(x, weight, bias=None):
    return F.conv2d(x, weight, bias, stride=2, padding=1)


def inputs(n, channels, size, out_channels=64, layout=torch.channels_last, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, *size, generator=g).to(memory_format=layout).requires_grad_()
    weight = (torch.randn(out_channels, channels, 3, 3, generator=g) / 24).to(memory_format=layout).requires_grad_()
    bias = torch.randn(out_channels, generator=g).requires_grad_()
    return x, weight, bias


@pytest.mark.parametrize("size", [(14, 14), (7, 7), (4, 4), (2, 2), (1, 1), (5, 6)])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_values_and_gradients_equal_pytorch(size, layout):
    x, weight, bias = inputs(3, 64, size, layout=layout)
    got, want = conv(x, weight, bias), reference(x, weight, bias)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    grad = torch.randn_like(want)
    for a, b in zip(
        torch.autograd.grad(got, (x, weight, bias), grad), torch.autograd.grad(want, (x, weight, bias), grad)
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_more_output_channels_than_input_and_no_bias():
    x, weight, _ = inputs(2, 64, (6, 6), out_channels=128)
    torch.testing.assert_close(conv(x, weight), reference(x, weight), rtol=1e-4, atol=1e-4)


def test_second_derivatives_equal_pytorch():
    """The inner gradient of second-order MAML is differentiated again: every mixed second derivative."""
    x, weight, bias = inputs(3, 64, (7, 7))
    grad = torch.randn(3, 64, 4, 4)
    directions = [torch.randn_like(t) for t in (x, weight, bias)]
    results = []
    for fn in (conv, reference):
        first = torch.autograd.grad((fn(x, weight, bias) * grad).square().sum(), (x, weight, bias), create_graph=True)
        inner = sum((g * d).sum() for g, d in zip(first, directions))
        results.append(torch.autograd.grad(inner, (x, weight, bias), allow_unused=True))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_meta_gradient_through_torch_func_grad_equals_pytorch():
    """torch.func.grad inside an outer backward (MAML's compiled inner loop): both levels record the kernels."""
    x, w1, _ = inputs(3, 64, (7, 7), seed=1)
    query, w2, _ = inputs(3, 64, (7, 7), seed=2)

    def loss(fn, params, images):
        return fn(torch.relu(fn(images, params[0])), params[1]).square().sum()

    def meta_gradient(fn):
        inner = torch.func.grad(lambda p: loss(fn, p, x.detach()))((w1, w2))
        fast = [p - 0.01 * g for p, g in zip((w1, w2), inner)]
        return torch.autograd.grad(loss(fn, fast, query.detach()), (w1, w2))

    for a, b in zip(meta_gradient(conv), meta_gradient(reference)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


def test_results_do_not_depend_on_the_thread_count():
    x, weight, bias = inputs(5, 64, (14, 14))
    grad = torch.randn(5, 64, 7, 7)
    previous = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            y = conv(x, weight, bias)
            outputs.append([y, *torch.autograd.grad(y, (x, weight), grad)])
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(*outputs):
        assert torch.equal(a, b)


def test_the_layer_is_nn_conv2d_unless_native_and_the_call_qualifies():
    net = conv4_strided()
    x = torch.randn(2, 1, 28, 28)
    plain = net(x)
    net.use_native_convolutions()
    layers = [m for m in net.modules() if isinstance(m, StridedConv2d)]
    assert [m.native for m in layers] == [True] * 4
    torch.testing.assert_close(net(x), plain, rtol=1e-4, atol=1e-5)
    assert not qualifies(x, layers[0].weight)  # one input channel: PyTorch's convolution
    assert qualifies(torch.randn(2, 64, 14, 14), layers[1].weight)
    assert not qualifies(torch.randn(2, 64, 14, 14, dtype=torch.float64), layers[1].weight.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not qualifies(torch.randn(2, 64, 14, 14), layers[1].weight)
    net.use_contiguous_layout()  # vmapped algorithms: no vmap rule for the kernels
    assert [m.native for m in layers] == [False] * 4


def test_without_kernels_the_layers_stay_pytorch(monkeypatch):
    monkeypatch.setattr("learntolearn.nn.backbones.strided_conv_kernels", lambda: None)
    net = conv4_strided().use_native_convolutions()
    assert not any(m.native for m in net.modules() if isinstance(m, StridedConv2d))


def test_flop_counter_counts_the_kernels_as_pytorch_counts_its_convolutions():
    from torch.utils.flop_counter import FlopCounterMode

    x, weight, bias = inputs(3, 64, (7, 7))
    counts = []
    for fn in (conv, reference):
        counter = FlopCounterMode(display=False)
        with counter:
            fn(x, weight, bias).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
