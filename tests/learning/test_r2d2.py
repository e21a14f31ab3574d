"""R2-D2's ridge head: the closed form, its gradients, and a task distribution it must learn."""

import pytest
import torch
from helpers import meta_train
from torch import nn

from learntolearn.algorithms.r2d2 import R2D2, ridge_weights
from learntolearn.engine.evaluate import evaluate
from learntolearn.errors import ConfigError
from learntolearn.testing import point_task, random_task
from learntolearn.types import Task


def test_the_woodbury_form_equals_the_primal_ridge_solution():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 20, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    ridge = torch.tensor(0.7, dtype=torch.float64)
    primal = torch.linalg.solve(x.T @ x + ridge * torch.eye(20, dtype=torch.float64), x.T @ y)
    torch.testing.assert_close(ridge_weights(x, y, ridge), primal, rtol=1e-10, atol=1e-12)


def test_gradients_through_the_solver_match_finite_differences():
    model = R2D2(nn.Linear(6, 5), ridge=0.5).double()
    task = random_task(ways=3, shots=2, queries=2, dtype=torch.float64)
    support, query = model.embed(task.support_x), model.embed(task.query_x)

    def logits(support, query, log_ridge, scale):
        for name, value in (("log_ridge", log_ridge), ("scale", scale)):  # plain tensors in place of parameters
            delattr(model, name)
            setattr(model, name, value)
        return model.compare(support, task.support_y, 3, query)

    inputs = (
        support.detach().requires_grad_(),
        query.detach().requires_grad_(),
        model.log_ridge.detach().clone().requires_grad_(),
        model.scale.detach().clone().requires_grad_(),
    )
    assert torch.autograd.gradcheck(logits, inputs)


def test_relabelling_the_support_set_permutes_the_logits():
    model = R2D2(nn.Flatten())
    task = random_task(ways=3, shots=2, queries=2)
    permutation = torch.tensor([2, 0, 1])
    logits = model.predict(model.adapt(task.support_x, task.support_y), task.query_x)
    relabelled = model.predict(model.adapt(task.support_x, permutation[task.support_y]), task.query_x)
    torch.testing.assert_close(relabelled[:, permutation], logits)


def test_a_fixed_ridge_is_a_buffer_and_a_bad_one_is_refused():
    assert "log_ridge" not in dict(R2D2(nn.Flatten(), learn_ridge=False).named_parameters())
    with pytest.raises(ConfigError, match="'ridge' must be > 0"):
        R2D2(nn.Flatten(), ridge=0.0)


def noisy_task(generator: torch.Generator) -> Task:
    """5-way 1-shot points in 4 dimensions, hidden among 28 dimensions of large noise."""
    task = point_task(generator, ways=5, shots=1, queries=3, dim=4, noise=0.3)
    pad = lambda x: torch.cat([x, 3 * torch.randn(x.shape[0], 28, generator=generator)], dim=1)
    return Task(pad(task.support_x), task.support_y, pad(task.query_x), task.query_y, task.class_ids)


def test_r2d2_learns_an_embedding_that_ignores_the_noise():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    test = [noisy_task(torch.Generator().manual_seed(1000 + i)) for i in range(100)]
    model = R2D2(nn.Linear(32, 16))
    before = evaluate(model, test, progress=False).mean
    meta_train(
        model, lambda: [noisy_task(generator) for _ in range(8)], 300, torch.optim.Adam(model.parameters(), lr=1e-2)
    )
    after = evaluate(model, test, progress=False).mean
    assert after > 0.8 and after > before + 0.25, (before, after)
