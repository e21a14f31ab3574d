"""MAML++ options of MAML: per-step learned inner rates (LSLR) and the multi-step loss (MSL), against
hand-unrolled references and finite differences (float64)."""

import pytest
import torch
import torch.nn.functional as F
from maml_reference import WAYS, mlp_with_batchnorm, tasks

from learntolearn.algorithms import ANIL, MAML


def unrolled(model, params, rates, task, steps, weights=None):
    """Hand-unrolled inner loop with a rate per parameter and step; the (weighted) query loss."""
    names = [n for n, _ in model.named_parameters()]

    def forward(ps, x):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,))

    fast, losses = list(params), []
    for step in range(steps):
        grads = torch.autograd.grad(
            F.cross_entropy(forward(fast, task.support_x), task.support_y), fast, create_graph=True
        )
        fast = [p - rates[i][min(step, len(rates[i]) - 1)] * g for i, (p, g) in enumerate(zip(fast, grads))]
        losses.append(F.cross_entropy(forward(fast, task.query_x), task.query_y))
    return losses[-1] if weights is None else sum(w * loss for w, loss in zip(weights, losses))


def test_per_step_rates_start_as_maml_and_get_exact_meta_gradients():
    torch.manual_seed(0)
    plain = MAML(mlp_with_batchnorm(), inner_lr=0.3, inner_steps=2)
    lslr = MAML(mlp_with_batchnorm(), inner_lr=0.3, inner_steps=2, per_step_rates=True).double()
    lslr.model.load_state_dict(plain.model.state_dict())
    batch = tasks(count=2)
    plain.train(), lslr.train()
    assert torch.allclose(plain.meta_loss(batch).loss, lslr.meta_loss(batch).loss)
    params = list(lslr.model.parameters())
    rates = [lslr.step_rates[name.replace(".", "__")] for name, _ in lslr.model.named_parameters()]
    with torch.no_grad():
        for i, rate in enumerate(rates):
            rate.copy_(torch.tensor([0.2 + 0.01 * i, 0.35]))
    lslr.zero_grad()
    lslr.meta_loss(batch).loss.backward()
    reference = torch.stack([unrolled(lslr.model, params, rates, t, 2) for t in batch]).mean()
    expected = torch.autograd.grad(reference, params + rates)
    for got, want in zip([p.grad for p in params + rates], expected):
        torch.testing.assert_close(got, want)
    rate, eps = rates[0], 1e-6
    with torch.no_grad():
        rate[1] += eps
        up = lslr.meta_loss(batch).loss
        rate[1] -= 2 * eps
        down = lslr.meta_loss(batch).loss
        rate[1] += eps
    assert float((up - down) / (2 * eps)) == pytest.approx(float(rate.grad[1]), rel=1e-5)


def test_evaluation_with_more_steps_reuses_the_last_steps_rates():
    lslr = MAML(mlp_with_batchnorm(), inner_lr=0.3, inner_steps=2, test_inner_steps=4, per_step_rates=True).double()
    rates = lslr.inner_rates()
    assert [float(next(iter(rates(step).values())).detach()) for step in range(4)] == pytest.approx([0.3] * 4)
    with torch.no_grad():
        next(iter(lslr.step_rates.values()))[1] = 0.1
    assert float(next(iter(rates(3).values())).detach()) == pytest.approx(0.1)


def test_multi_step_loss_weights_every_step_then_anneals_to_the_last():
    torch.manual_seed(0)
    msl = MAML(mlp_with_batchnorm(), inner_lr=0.3, inner_steps=3, multi_step_loss_steps=4).double()
    batch = tasks(count=2)
    params = list(msl.model.parameters())
    rates = [[0.3]] * len(params)
    for iteration in range(6):
        weights = torch.full((3,), (1 - min(1, iteration / 4)) / 3)
        weights[-1] += min(1, iteration / 4)
        torch.testing.assert_close(msl.step_weights(), weights.float())
        msl.train()
        loss = msl.meta_loss(batch).loss
        reference = torch.stack([unrolled(msl.model, params, rates, t, 3, weights.double()) for t in batch]).mean()
        torch.testing.assert_close(loss, reference)
    assert int(msl.meta_iterations) == 6 and "meta_iterations" in msl.state_dict()
    assert "meta_iterations" not in MAML(mlp_with_batchnorm()).state_dict()


def test_maml_plus_plus_options_are_refused_where_they_do_not_apply():
    with pytest.raises(ValueError, match="ANIL does not take them"):
        ANIL(torch.nn.Linear(4, 5), torch.nn.Linear(5, WAYS), per_step_rates=True)
    with pytest.raises(ValueError, match="drop batched and compiled"):
        MAML(mlp_with_batchnorm(), multi_step_loss_steps=10, batched=True)
