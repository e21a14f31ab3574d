"""The coordinate-wise LSTM optimizer: gradient preprocessing, learning to optimize quadratics, torch.optim use."""

import math

import pytest
import torch

from learntolearn.l2o import (
    CoordinatewiseLSTM,
    LearnedOptimizer,
    Quadratics,
    meta_train,
    run_optimizer,
)
from learntolearn.l2o.lstm_optimizer import preprocess_gradient


def test_gradient_preprocessing_follows_appendix_a():
    g = torch.tensor([2.0, -1e-3, 1e-6, -1e-6, 0.0])
    out = preprocess_gradient(g, p=10)
    expected = torch.tensor(
        [
            [math.log(2.0) / 10, 1.0],
            [math.log(1e-3) / 10, -1.0],
            [-1.0, 1e-6 * math.exp(10)],
            [-1.0, -1e-6 * math.exp(10)],
            [-1.0, 0.0],
        ]
    )
    torch.testing.assert_close(out, expected)


def test_as_a_torch_optimizer_it_reproduces_the_functional_rollout():
    torch.manual_seed(0)
    net = CoordinatewiseLSTM()
    params, loss_fn = Quadratics().sample(3, torch.Generator().manual_seed(5))
    theta, state = params[0].clone(), net.initial_state(params[0].numel())
    for _ in range(4):
        theta.requires_grad_()
        (grad,) = torch.autograd.grad(loss_fn([theta]), [theta])
        with torch.no_grad():
            update, state = net(grad.reshape(-1), state)
            theta = theta + update.view_as(theta)
    p = params[0].clone().requires_grad_()
    optimizer = LearnedOptimizer([p], net)
    for _ in range(4):
        optimizer.zero_grad()
        loss_fn([p]).backward()
        optimizer.step()
    torch.testing.assert_close(p.detach(), theta, rtol=1e-6, atol=1e-6)


def test_parameters_of_any_shape_are_optimized_coordinate_wise():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3)
    optimizer = LearnedOptimizer(conv.parameters(), CoordinatewiseLSTM())
    before = [p.detach().clone() for p in conv.parameters()]
    conv(torch.randn(4, 2, 5, 5)).pow(2).mean().backward()
    optimizer.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, conv.parameters()))
    assert optimizer.state[conv.weight]["lstm"][0].shape == (conv.weight.numel(), 20)


@pytest.mark.slow
def test_meta_training_learns_to_optimize_held_out_quadratics():
    torch.manual_seed(0)
    problem = Quadratics()
    untrained = run_optimizer(problem, lambda p: LearnedOptimizer(p, CoordinatewiseLSTM()), steps=50, seed=11)
    net = meta_train(CoordinatewiseLSTM(), problem, iterations=40, steps=50, unroll=10, batch=16, lr=3e-3, seed=0)
    learned = run_optimizer(problem, lambda p: LearnedOptimizer(p, net), steps=50, seed=11)
    sgd = run_optimizer(problem, lambda p: torch.optim.SGD(p, lr=0.01), steps=50, seed=11)
    assert learned[-1] < 0.2 * untrained[-1], (learned[-1], untrained[-1])
    assert learned[10] < sgd[10], "after 10 steps the learned optimizer is ahead of SGD with its best step size"
