"""MAML's meta-gradient against an explicit unrolled reference and finite differences (float64)."""

import pytest
import torch
import torch.nn.functional as F
from maml_reference import (
    SHOTS,
    WAYS,
    conv_with_batchnorm,
    meta_gradient,
    mlp_with_batchnorm,
    reference_meta_loss,
    tasks,
)
from torch import nn

from learntolearn.algorithms.maml import MAML
from learntolearn.nn.compile import compile_method
from learntolearn.types import Task


@pytest.mark.parametrize("make_model, shape", [(mlp_with_batchnorm, (4,)), (conv_with_batchnorm, (1, 4, 4))])
@pytest.mark.parametrize("batched", [False, True])
def test_second_order_meta_gradient_equals_unrolled_reference(make_model, shape, batched):
    torch.manual_seed(0)
    maml = MAML(make_model(), inner_lr=0.3, inner_steps=2, batched=batched)
    batch = tasks(shape=shape)
    params = list(maml.model.parameters())
    expected = torch.autograd.grad(reference_meta_loss(maml.model, params, batch, 0.3, 2), params)
    for got, want in zip(meta_gradient(maml, batch), expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("make_model, shape", [(mlp_with_batchnorm, (4,)), (conv_with_batchnorm, (1, 4, 4))])
@pytest.mark.parametrize("batched", [False, True])
def test_second_order_meta_gradient_matches_finite_differences(make_model, shape, batched):
    torch.manual_seed(0)
    maml = MAML(make_model(), inner_lr=0.3, inner_steps=2, batched=batched)
    batch = tasks(shape=shape)
    analytic = meta_gradient(maml, batch)
    params = list(maml.model.parameters())
    eps = 1e-6
    g = torch.Generator().manual_seed(0)
    for index, p in enumerate(params):
        for coordinate in torch.randint(0, p.numel(), (2,), generator=g).tolist():
            with torch.no_grad():
                original = p.view(-1)[coordinate].item()
                p.view(-1)[coordinate] = original + eps
                plus = maml.meta_loss(batch).loss.item()
                p.view(-1)[coordinate] = original - eps
                minus = maml.meta_loss(batch).loss.item()
                p.view(-1)[coordinate] = original
            numeric = (plus - minus) / (2 * eps)
            assert analytic[index].view(-1)[coordinate].item() == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("batched", [False, True])
def test_first_order_drops_exactly_the_second_order_terms(batched):
    torch.manual_seed(0)
    batch = tasks()
    first = MAML(mlp_with_batchnorm(), inner_lr=0.3, inner_steps=2, first_order=True, batched=batched)
    params = list(first.model.parameters())
    expected = torch.autograd.grad(reference_meta_loss(first.model, params, batch, 0.3, 2, first_order=True), params)
    got = meta_gradient(first, batch)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    second = MAML(first.model, inner_lr=0.3, inner_steps=2, batched=batched)
    assert any(not torch.allclose(a, b) for a, b in zip(got, meta_gradient(second, batch)))


def test_vmapped_and_looped_meta_losses_agree_with_batchnorm():
    torch.manual_seed(0)
    model = conv_with_batchnorm()
    batch = tasks(shape=(1, 4, 4))
    loop = MAML(model, inner_lr=0.3, inner_steps=3)
    a = loop.meta_loss(batch)
    vmapped = MAML(model, inner_lr=0.3, inner_steps=3, batched=True)
    b = vmapped.meta_loss(batch)
    torch.testing.assert_close(a.loss, b.loss)
    assert a.accuracy == pytest.approx(b.accuracy)


@pytest.mark.slow
@pytest.mark.parametrize("first_order", [False, True])
def test_compiled_meta_gradient_equals_unrolled_reference(first_order):
    """torch.compile's graph of the task loop gives the eager reference's meta-gradient (float64)."""
    torch.manual_seed(0)
    maml = MAML(conv_with_batchnorm(), inner_lr=0.3, inner_steps=2, first_order=first_order, compiled=True)
    batch = tasks(count=2, shape=(1, 4, 4))
    params = list(maml.model.parameters())
    expected = torch.autograd.grad(reference_meta_loss(maml.model, params, batch, 0.3, 2, first_order), params)
    for got, want in zip(meta_gradient(maml, batch), expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.slow
def test_compiled_graphs_group_equally_shaped_tasks():
    """tasks_per_graph=2 over three tasks of one shape and one with more queries: three graph calls
    (2 + 1 tasks, then the odd shape alone), and the meta-gradient and accuracy of the eager loop."""
    torch.manual_seed(0)
    maml = MAML(mlp_with_batchnorm(), inner_lr=0.3, first_order=True, compiled=True, tasks_per_graph=2)
    g = torch.Generator().manual_seed(2)
    more_queries = Task(
        torch.randn(WAYS * SHOTS, 4, generator=g, dtype=torch.float64),
        torch.arange(WAYS).repeat_interleave(SHOTS),
        torch.randn(WAYS * 5, 4, generator=g, dtype=torch.float64),
        torch.arange(WAYS).repeat_interleave(5),
        torch.arange(WAYS),
    )
    batch = [*tasks(count=3), more_queries]
    group_sizes = []
    compiled = compile_method(maml.tasks_loss)
    maml.execution.graphs = lambda support_x, *rest: group_sizes.append(len(support_x)) or compiled(support_x, *rest)
    got = meta_gradient(maml, batch)
    assert group_sizes == [2, 1, 1]
    params = list(maml.model.parameters())
    expected = torch.autograd.grad(reference_meta_loss(maml.model, params, batch, 0.3, 1, first_order=True), params)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    eager = MAML(maml.model, inner_lr=0.3, first_order=True)
    assert maml.meta_loss(batch).accuracy == pytest.approx(eager.meta_loss(batch).accuracy)


def reference_bfloat16_query_meta_loss(model: nn.Module, params: list[torch.Tensor], batch, lr, steps):
    """The unrolled reference with float32 inner steps and each query pass under bfloat16 autocast."""
    names = [n for n, _ in model.named_parameters()]
    losses = []
    for task in batch:
        fast = list(params)
        for _ in range(steps):
            support = torch.func.functional_call(model, dict(zip(names, fast)), (task.support_x,))
            grads = torch.autograd.grad(F.cross_entropy(support, task.support_y), fast, create_graph=True)
            fast = [p - lr * g for p, g in zip(fast, grads)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = torch.func.functional_call(model, dict(zip(names, fast)), (task.query_x,)).float()
        losses.append(F.cross_entropy(outputs, task.query_y))
    return torch.stack(losses).mean()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["loop", "vmap", "compiled"])
def test_bfloat16_queries_change_only_the_query_pass(path):
    """bfloat16_queries: the second-order meta-gradient of float32 inner steps and a bfloat16 query pass,
    within a few percent of the all-float32 one (and not equal to it: autocast is on)."""
    torch.manual_seed(0)
    model = conv_with_batchnorm().float()
    batch = [
        Task(t.support_x.float(), t.support_y, t.query_x.float(), t.query_y, t.class_ids)
        for t in tasks(count=2, shape=(1, 4, 4))
    ]
    mixed = MAML(
        model, inner_lr=0.3, inner_steps=2, bfloat16_queries=True, batched=path == "vmap", compiled=path == "compiled"
    )
    params = list(mixed.model.parameters())
    got = torch.cat([g.flatten() for g in meta_gradient(mixed, batch)])
    exact = torch.cat(
        [g.flatten() for g in torch.autograd.grad(reference_meta_loss(mixed.model, params, batch, 0.3, 2), params)]
    )
    reference = torch.cat(
        [
            g.flatten()
            for g in torch.autograd.grad(reference_bfloat16_query_meta_loss(mixed.model, params, batch, 0.3, 2), params)
        ]
    )
    assert 1e-4 < (got - exact).norm() / exact.norm() < 0.05
    # vmap's decomposed BatchNorm rounds its bfloat16 differently; the compiled graph cannot fuse across
    # max-pooling's backward (left to PyTorch's kernel), so it rounds bfloat16 values at other points (0.11%)
    tolerance = {"loop": 1e-4, "compiled": 2e-3, "vmap": 0.02}[path]
    assert (got - reference).norm() / reference.norm() < tolerance
