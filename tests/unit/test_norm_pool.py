"""The fused BatchNorm + max-pooling + ReLU of conv blocks against PyTorch's operators in float64."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learntolearn.algorithms import MAML, PrototypicalNetworks
from learntolearn.nn import norm_pool
from learntolearn.nn.backbones import conv4
from learntolearn.nn.norm_pool import can_fuse, conv_norm_pool_relu, norm_pool_relu, recomputes_conv

pytestmark = pytest.mark.skipif(norm_pool.kernels() is None, reason="no C compiler to build the fused kernels")


def reference(x: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    return F.relu(F.max_pool2d(norm(x), 2))


def channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def run(fn, x0, norm, grad, dtype):
    """Outputs, input/weight/bias gradients and running statistics of one training step of ``fn``."""
    norm = copy.deepcopy(norm).to(dtype)
    x = channels_last(x0.to(dtype)).requires_grad_()
    out = fn(x, norm)
    out.backward(channels_last(grad.to(dtype)))
    return [
        t.detach().double()
        for t in (out, x.grad, norm.weight.grad, norm.bias.grad, norm.running_mean, norm.running_var)
    ]


@pytest.mark.parametrize("shape", [(40, 8, 12, 12), (30, 16, 7, 7), (20, 8, 5, 6), (6, 64, 3, 3)])
def test_fused_step_equals_pytorchs_operators_in_float64(shape):
    torch.manual_seed(0)
    x0 = torch.randn(shape) * 3 + 1
    norm = nn.BatchNorm2d(shape[1])
    with torch.no_grad():
        norm.weight.normal_()  # negative scales too: the window's maximum is then its smallest x
        norm.bias.normal_()
    grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    expected = run(reference, x0, norm, grad, torch.float64)
    fused = run(norm_pool_relu, x0, norm, grad, torch.float32)
    for name, got, want in zip(["out", "grad x", "grad weight", "grad bias", "mean", "var"], fused, expected):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max())), name


@pytest.mark.parametrize("shape", [(40, 1, 12, 12), (30, 3, 7, 7), (12, 1, 5, 6)])
def test_a_first_block_with_its_convolution_recomputed_equals_pytorchs_operators_in_float64(shape):
    torch.manual_seed(4)
    x = channels_last(torch.rand(shape))
    conv = nn.Conv2d(shape[1], 32, 3, padding=1, bias=False)
    norm = nn.BatchNorm2d(32)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    grad = channels_last(torch.randn(shape[0], 32, shape[2] // 2, shape[3] // 2))
    assert recomputes_conv(x, conv) and can_fuse(x, norm)

    def step(fn, dtype):
        c, b = copy.deepcopy(conv).to(dtype), copy.deepcopy(norm).to(dtype)
        out = fn(x.to(dtype), c, b)
        out.backward(grad.to(dtype))
        return [
            t.detach().double() for t in (out, c.weight.grad, b.weight.grad, b.bias.grad, b.running_mean, b.running_var)
        ]

    expected = step(lambda x, c, b: reference(c(x), b), torch.float64)
    fused = step(conv_norm_pool_relu, torch.float32)
    for name, got, want in zip(["out", "grad conv", "grad weight", "grad bias", "mean", "var"], fused, expected):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max())), name


def test_the_convolution_is_recomputed_only_for_inputs_without_gradient():
    x, conv = channels_last(torch.rand(4, 1, 6, 6)), nn.Conv2d(1, 8, 3, padding=1, bias=False)
    assert recomputes_conv(x, conv)
    assert not recomputes_conv(x.clone().requires_grad_(), conv)
    assert not recomputes_conv(torch.rand(4, 16, 6, 6), nn.Conv2d(16, 8, 3, padding=1, bias=False))
    assert not recomputes_conv(x, nn.Conv2d(1, 8, 3, padding=1))  # a bias is not in the kernels


def test_ties_route_the_gradient_to_the_first_maximum_as_pytorch_does():
    x0 = torch.randint(0, 3, (16, 4, 6, 6)).float()  # many equal values in each window
    norm, grad = nn.BatchNorm2d(4), torch.randn(16, 4, 3, 3)
    expected = run(reference, x0, norm, grad, torch.float64)
    fused = run(norm_pool_relu, x0, norm, grad, torch.float32)
    assert torch.allclose(fused[1], expected[1], atol=1e-5)


def test_nan_propagates_as_through_pytorchs_operators():
    x0 = torch.randn(4, 2, 4, 4)
    x0[1, 0, 2, 3] = float("nan")
    norm = nn.BatchNorm2d(2)
    out = norm_pool_relu(channels_last(x0).requires_grad_(), copy.deepcopy(norm))
    assert torch.equal(out.isnan(), reference(x0, copy.deepcopy(norm)).isnan())


def test_results_do_not_depend_on_the_number_of_threads():
    torch.manual_seed(1)
    x0, norm, grad = torch.randn(64, 8, 10, 10), nn.BatchNorm2d(8), torch.randn(64, 8, 5, 5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(norm_pool_relu, x0, norm, grad, torch.float32)
        torch.set_num_threads(2)
        two = run(norm_pool_relu, x0, norm, grad, torch.float32)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_only_float32_training_steps_with_gradients_are_fused():
    x, norm = channels_last(torch.randn(4, 3, 6, 6)), nn.BatchNorm2d(3)
    assert can_fuse(x, norm)
    assert not can_fuse(x.contiguous(), nn.BatchNorm2d(3)) or x.shape[1] == 1
    assert not can_fuse(x.double(), norm.double())
    with torch.no_grad():
        assert not can_fuse(x, norm)
    assert not can_fuse(x, norm.eval())


def test_without_the_kernels_the_same_function_runs_pytorchs_operators(monkeypatch):
    torch.manual_seed(2)
    x0, norm, grad = torch.randn(8, 4, 6, 6), nn.BatchNorm2d(4), torch.randn(8, 4, 3, 3)
    fused = run(norm_pool_relu, x0, norm, grad, torch.float32)
    monkeypatch.setattr(norm_pool, "kernels", lambda: None)
    assert not can_fuse(channels_last(x0), norm)
    plain = run(norm_pool_relu, x0, norm, grad, torch.float32)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(fused, plain))


@pytest.mark.parametrize("environment", [{"CC": "/nonexistent/cc"}, {"CC": "false"}, {"LTL_FUSED_KERNELS": "0"}])
def test_without_a_working_compiler_the_kernels_are_simply_absent(monkeypatch, tmp_path, environment):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing built earlier is found
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    norm_pool.kernels.cache_clear()
    try:
        assert norm_pool.kernels() is None
    finally:
        monkeypatch.undo()
        norm_pool.kernels.cache_clear()


def test_a_fused_conv4_trains_protonets_as_the_plain_one_in_float64_and_keeps_its_state_dict():
    torch.manual_seed(3)
    plain = conv4().double()
    fused = copy.deepcopy(plain).float().use_fused_blocks()
    assert list(fused.state_dict()) == list(plain.state_dict())
    x, y = torch.rand(30, 1, 28, 28, dtype=torch.float64), torch.arange(5).repeat(6)
    losses, grads = [], []
    for backbone, inputs in ((plain, x), (fused, x.float())):
        model = PrototypicalNetworks(backbone)
        support, query = model.embed(inputs[:10]), model.embed(inputs[10:])
        loss = model.query_loss(model.compare(support, y[:10], 5, query), y[10:])
        losses.append(loss.double())
        grads.append([g.double() for g in torch.autograd.grad(loss, list(backbone.parameters()))])
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)
    for want, got in zip(*grads):
        assert (got - want).norm() < 1e-4 * want.norm()
    for want, got in zip(plain.state_dict().values(), fused.state_dict().values()):
        assert torch.allclose(got.double(), want.double(), rtol=1e-5, atol=1e-6)  # running statistics updated alike


def test_metric_learners_and_maml_in_the_task_loop_fuse():
    from learntolearn.algorithms.base import ModelSetting

    setting = ModelSetting(output_shape=(64,), ways=5, max_ways=5, train_classes=10)
    assert all(b.fused for b in PrototypicalNetworks.prepare_backbone(conv4(), setting)[:4])
    for first_order in (True, False):
        assert all(
            b.fused for b in MAML(nn.Sequential(conv4(), nn.Linear(64, 5)), first_order=first_order).model[0][:4]
        )
    for options in ({"batched": True}, {"compiled": True}):  # vmap and Inductor take PyTorch's operators
        maml = MAML(nn.Sequential(conv4(), nn.Linear(64, 5)), first_order=True, **options)
        assert not any(b.fused for b in maml.model[0][:4])


def second_order_step(fused: bool, x0, weight, bias, upstream, u, u_weight, u_bias, dtype):
    """First derivatives of relu(max_pool2d(batch_norm(x))) taken with a graph, then the gradients of
    <u, grad x> + <u_weight, grad weight> + <u_bias, grad bias> with respect to upstream, x and weight."""
    x = channels_last(x0.to(dtype)).requires_grad_()
    w, b = weight.to(dtype).requires_grad_(), bias.to(dtype).requires_grad_()
    g = channels_last(upstream.to(dtype)).requires_grad_()
    if fused:
        out, _, _ = norm_pool._NormPoolReLU.apply(x, w, b, 1e-5)
    else:
        out = F.relu(F.max_pool2d(F.batch_norm(x, None, None, w, b, training=True, eps=1e-5), 2))
    grad_x, grad_w, grad_b = torch.autograd.grad(out, (x, w, b), g, create_graph=True)
    scalar = (grad_x * u.to(dtype)).sum() + (grad_w * u_weight.to(dtype)).sum() + (grad_b * u_bias.to(dtype)).sum()
    return [t.detach().double() for t in (grad_x, grad_w, grad_b, *torch.autograd.grad(scalar, (g, x, w)))]


@pytest.mark.parametrize("shape", [(40, 8, 12, 12), (30, 16, 7, 7), (20, 8, 5, 6), (6, 64, 3, 3)])
def test_the_second_derivative_equals_pytorchs_double_backward_in_float64(shape):
    torch.manual_seed(6)
    n, c, h, w = shape
    x0 = torch.randn(shape) * 3 + 1
    inputs = (x0, torch.randn(c), torch.randn(c), torch.randn(n, c, h // 2, w // 2))
    cotangents = (torch.randn(shape), torch.randn(c), torch.randn(c))
    expected = second_order_step(False, *inputs, *cotangents, torch.float64)
    fused = second_order_step(True, *inputs, *cotangents, torch.float32)
    names = ["grad x", "grad weight", "grad bias", "d/d upstream", "d/dx", "d/d weight"]
    for name, got, want in zip(names, fused, expected):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max())), name


def test_the_second_derivative_does_not_depend_on_the_number_of_threads():
    torch.manual_seed(7)
    inputs = (torch.randn(64, 8, 10, 10), torch.randn(8), torch.randn(8), torch.randn(64, 8, 5, 5))
    cotangents = (torch.randn(64, 8, 10, 10), torch.randn(8), torch.randn(8))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = second_order_step(True, *inputs, *cotangents, torch.float32)
        torch.set_num_threads(2)
        two = second_order_step(True, *inputs, *cotangents, torch.float32)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


@pytest.mark.parametrize("first_order", [True, False])
def test_maml_with_fused_blocks_has_the_meta_gradient_of_float64(first_order):
    torch.manual_seed(5)
    plain = nn.Sequential(conv4(), nn.Linear(64, 5)).double()
    fused = copy.deepcopy(plain).float()
    support, query = torch.rand(5, 1, 28, 28, dtype=torch.float64), torch.rand(15, 1, 28, 28, dtype=torch.float64)
    y_support, y_query = torch.arange(5), torch.arange(5).repeat(3)
    grads = []
    for model, dtype in ((plain, torch.float64), (fused, torch.float32)):
        maml = MAML(model, first_order=first_order)  # float64 runs PyTorch's operators (the fused path is float32)
        fast = maml.fast_weights(support.to(dtype), y_support, 5)
        loss = maml.query_loss(maml.forward_with(fast, query.to(dtype)), y_query)
        grads.append([g.double() for g in torch.autograd.grad(loss, list(maml.model.parameters()))])
    for want, got in zip(*grads):
        assert (got - want).norm() <= 1e-4 * want.norm() + 1e-9


def test_a_recomputed_convolution_has_a_first_derivative_only_and_is_not_used_where_a_second_is_needed():
    x, conv, norm = channels_last(torch.rand(4, 1, 6, 6)), nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)
    (grad,) = torch.autograd.grad(conv_norm_pool_relu(x, conv, norm).square().sum(), conv.weight, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()
    with norm_pool.twice_differentiable():
        out = conv_norm_pool_relu(x, conv, norm)
    (grad,) = torch.autograd.grad(out.square().sum(), conv.weight, create_graph=True)
    grad.sum().backward()  # PyTorch's convolution, then the twice-differentiable fused BatchNorm, pooling and ReLU
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
