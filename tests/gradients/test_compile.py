"""The compile backend's float form of ReLU's backward against PyTorch's own."""

import copy

import pytest
import torch

from learntolearn.nn import strided_conv
from learntolearn.nn.backbones import conv4_strided
from learntolearn.nn.compile import compile_without_bool_masks, threshold_backward_in_floats


def assert_compiled_second_order_gradients_equal_eager(net: torch.nn.Module, x: torch.Tensor) -> None:
    """The gradient of a loss after one inner gradient step (backward ops appear twice), compiled and eager."""

    def second_order(x):
        params = dict(net.named_parameters())
        loss = lambda p: torch.func.functional_call(net, p, (x,)).square().mean()
        inner = torch.func.grad(loss)(params)
        return loss({n: p - 0.1 * inner[n] for n, p in params.items()})

    eager = torch.autograd.grad(second_order(x), list(net.parameters()))
    compiled = torch.autograd.grad(compile_without_bool_masks(second_order)(x), list(net.parameters()))
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_threshold_backward_in_floats_equals_aten(threshold):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 8, 5, 5, generator=g).relu()  # ReLU outputs: many exact zeros
    out[0, 0, 0, :3] = threshold  # ties: no gradient, as in aten
    grad = torch.randn(out.shape, generator=g)
    expected = torch.ops.aten.threshold_backward(grad, out, threshold)
    got = threshold_backward_in_floats(grad, out, threshold)
    assert torch.equal(got, expected)  # -0.0 == 0.0: equal values
    assert (got[0, 0, 0, :3] == 0).all() and (expected != 0).any()


@pytest.mark.slow
def test_compiled_relu_network_gradients_equal_eager():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.BatchNorm2d(4, track_running_stats=False),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3),
    )
    assert_compiled_second_order_gradients_equal_eager(net, torch.randn(5, 1, 6, 6))


def test_the_rewrite_applies_even_when_a_plain_compile_of_the_same_graph_is_cached(monkeypatch):
    """AOTAutograd's cache keys ignore decompositions: it must not hand back the plain graph."""
    import learntolearn.nn.compile as compile_module

    calls = []

    def counted(grad, out, threshold):
        calls.append(tuple(out.shape))
        return threshold_backward_in_floats(grad, out, threshold)

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    x = torch.randn(2, 3)
    torch.compile(lambda x: net(x).sum())(x).backward()
    monkeypatch.setattr(compile_module, "threshold_backward_in_floats", counted)
    compile_without_bool_masks(lambda x: net(x).sum())(x).backward()
    assert calls == [(2, 4)]


def test_each_maml_instance_compiles_its_own_graph(monkeypatch):
    """Instances do not share Dynamo's per-code cache: with a recompile limit of 1 the second instance
    is still compiled instead of silently running eagerly."""
    import learntolearn.nn.compile as compile_module
    from learntolearn.algorithms.maml import MAML
    from learntolearn.types import Task

    compiles = []
    monkeypatch.setattr(
        compile_module, "_inductor_without_bool_masks", lambda graph, inputs: compiles.append(1) or graph
    )
    g = torch.Generator().manual_seed(0)
    tasks = [
        Task(
            torch.randn(4, 3, generator=g),
            torch.tensor([0, 0, 1, 1]),
            torch.randn(4, 3, generator=g),
            torch.tensor([0, 0, 1, 1]),
            torch.arange(2),
        )
        for _ in range(2)
    ]
    torch._dynamo.reset()
    counts = []
    with torch._dynamo.config.patch(recompile_limit=1):
        for lr in (0.1, 0.2):
            MAML(torch.nn.Linear(3, 2), inner_lr=lr, compiled=True).meta_loss(tasks).loss.backward()
            counts.append(len(compiles))
    assert counts[0] > 0 and counts[1] == 2 * counts[0]


@pytest.mark.slow
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_compiled_max_pooling_gradients_equal_eager_to_second_order(layout):
    """Max-pooling's backward runs as PyTorch's kernel inside the graph; its own derivative still flows."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 3),
    ).to(memory_format=layout)
    assert_compiled_second_order_gradients_equal_eager(net, torch.randn(5, 1, 6, 6).contiguous(memory_format=layout))


@pytest.mark.slow
@pytest.mark.parametrize("stride,padding,bias", [(2, 1, True), (1, 0, False)])
def test_one_channel_convolutions_compile_to_patches_with_equal_second_order_gradients(
    monkeypatch, stride, padding, bias
):
    """The first layer on grey images runs as gathered patches times the weight matrix in the graphs; a
    one-channel convolution deeper in the net (whose input gradient is needed) keeps PyTorch's backward."""
    import learntolearn.nn.compile as compile_module

    decomposed: dict[str, list[bool]] = {"patch_convolution": [], "patch_convolution_backward": []}

    def counting(name: str):
        decomposition, calls = getattr(compile_module, name), decomposed[name]

        def counted(*args):
            out = decomposition(*args)
            calls.append(out is not NotImplemented)
            return out

        return counted

    for name in decomposed:
        monkeypatch.setattr(compile_module, name, counting(name))  # read when the graph compiles
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, stride=stride, padding=padding, bias=bias),
        torch.nn.BatchNorm2d(6, track_running_stats=False),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 1, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.Flatten(),
    ).to(memory_format=torch.channels_last)
    assert_compiled_second_order_gradients_equal_eager(net, torch.randn(5, 1, 9, 9))
    # the first layer's forward, its weight gradient in the inner step and again in the outer one
    assert decomposed["patch_convolution"].count(True) >= 2
    assert decomposed["patch_convolution_backward"].count(True) >= 1
    assert False in decomposed["patch_convolution_backward"]  # the last layer's, whose input gradient is needed


@pytest.mark.slow
@pytest.mark.skipif(strided_conv.kernels() is None, reason="no C compiler to build the strided convolution kernels")
def test_strided_conv_kernels_compile_with_equal_second_order_gradients(monkeypatch):
    """MAML's strided conv4 with the C convolutions (learntolearn.nn.strided_conv): the compiled graph calls them
    and its second-order gradients equal eager PyTorch convolutions'."""
    calls: list[str] = []
    lib = strided_conv.kernels()

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(lib, name)

    torch.manual_seed(0)
    net = torch.nn.Sequential(conv4_strided(), torch.nn.Flatten(), torch.nn.Linear(64, 5))
    for norm in net.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):  # batch statistics only, as MAML's inner loop uses them
            norm.track_running_stats, norm.running_mean, norm.running_var, norm.num_batches_tracked = (
                False,
                None,
                None,
                None,
            )
    x = torch.randn(5, 1, 12, 12)
    plain = copy.deepcopy(net)

    def second_order(net, x):
        params = dict(net.named_parameters())
        loss = lambda p: torch.func.functional_call(net, p, (x,)).square().mean()
        inner = torch.func.grad(loss)(params)
        return loss({n: p - 0.1 * inner[n] for n, p in params.items()})

    eager = torch.autograd.grad(second_order(plain, x), list(plain.parameters()))
    net[0].use_native_convolutions()
    monkeypatch.setattr(strided_conv, "_lib", Counting)
    compiled = torch.autograd.grad(compile_without_bool_masks(second_order)(net, x), list(net.parameters()))
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    # three 64-channel layers, each: forward twice, input and weight gradient in the inner step, their
    # derivatives and the query pass's in the outer one
    assert {"strided_conv_forward", "strided_conv_input_grad", "strided_conv_weight_grad"} <= set(calls)
    assert len(calls) >= 3 * 12
