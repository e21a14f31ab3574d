"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., NeurIPS 2016).

A two-layer LSTM with shared weights is applied to every coordinate of the optimizee's parameters
separately (Section 2.1): it reads the preprocessed gradient of that coordinate and emits its
update, ``theta_{t+1} = theta_t + g_t`` (Eq. 1). It is meta-trained by truncated backpropagation
through the optimization trajectory on the summed losses ``sum_t f(theta_t)`` (Eq. 3), treating
the optimizee's gradients as inputs (the paper's ``d grad_t / d phi = 0``).
Because it is coordinate-wise, it applies to parameters of any shape and number, including shapes
it was not meta-trained on; whether it *helps* there is an empirical question.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from learntolearn.algorithms.inner import preprocess_gradient
from learntolearn.l2o.problems import Problem

State = tuple[Tensor, Tensor, Tensor, Tensor]


class CoordinatewiseLSTM(nn.Module):
    """Two LSTM layers (``hidden`` units) and a linear output, shared by all coordinates; updates are scaled by ``output_scale``."""

    def __init__(self, hidden: int = 20, output_scale: float = 0.1) -> None:
        super().__init__()
        self.hidden, self.output_scale = hidden, output_scale
        self.cell1 = nn.LSTMCell(2, hidden)
        self.cell2 = nn.LSTMCell(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def initial_state(self, coordinates: int) -> State:
        zeros = torch.zeros(coordinates, self.hidden)
        return zeros, zeros, zeros, zeros

    def forward(self, grad: Tensor, state: State) -> tuple[Tensor, State]:
        """Updates for a flat gradient vector ``(n,)`` and the next state."""
        h1, c1 = self.cell1(preprocess_gradient(grad), state[:2])
        h2, c2 = self.cell2(h1, state[2:])
        return self.output_scale * self.out(h2).squeeze(-1), (h1, c1, h2, c2)


def _flat(tensors: Iterable[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _split(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    return [chunk.view_as(t) for chunk, t in zip(flat.split([t.numel() for t in like]), like)]


def meta_train(
    net: CoordinatewiseLSTM,
    problem: Problem,
    *,
    iterations: int,
    steps: int = 100,
    unroll: int = 20,
    batch: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    log: Callable[[int, float], None] | None = None,
) -> CoordinatewiseLSTM:
    """Meta-train ``net`` with Adam on ``iterations`` trajectories of ``steps`` optimizee steps each,
    backpropagating through windows of ``unroll`` steps (Section 3: 100 steps, unrolled 20)."""
    generator = torch.Generator().manual_seed(seed)
    meta_opt = torch.optim.Adam(net.parameters(), lr=lr)
    for iteration in range(iterations):
        params, loss_fn = problem.sample(batch, generator)
        params = [p.requires_grad_() for p in params]
        state = net.initial_state(sum(p.numel() for p in params))
        total = 0.0
        for _ in range(steps // unroll):
            meta_loss = torch.zeros(())
            for _ in range(unroll):
                loss = loss_fn(params)
                grads = torch.autograd.grad(loss, params, retain_graph=True)
                update, state = net(_flat(grads).detach(), state)
                params = [p + u for p, u in zip(params, _split(update, params))]
                meta_loss = meta_loss + loss_fn(params)
            meta_opt.zero_grad()
            (meta_loss / (unroll * batch)).backward()
            if not all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None):
                raise FloatingPointError(f"non-finite meta-gradient at iteration {iteration}; lower lr ({lr})")
            meta_opt.step()
            total += float(meta_loss.detach()) / (unroll * batch)
            params = [p.detach().requires_grad_() for p in params]
            state = (state[0].detach(), state[1].detach(), state[2].detach(), state[3].detach())
        if log is not None:
            log(iteration, total / (steps // unroll))
    return net


def run_optimizer(
    problem: Problem,
    make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer],
    *,
    steps: int = 100,
    batch: int = 100,
    seed: int = 1,
) -> Tensor:
    """Mean loss per problem instance before each of ``steps`` steps and after the last: ``(steps + 1,)``."""
    params, loss_fn = problem.sample(batch, torch.Generator().manual_seed(seed))
    params = [p.clone().requires_grad_() for p in params]
    optimizer = make_optimizer(params)
    curve = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(params)
        curve.append(float(loss.detach()) / batch)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        curve.append(float(loss_fn(params)) / batch)
    return torch.tensor(curve)


class LearnedOptimizer(torch.optim.Optimizer):
    """A meta-trained :class:`CoordinatewiseLSTM` used as a ``torch.optim`` optimizer.

    Each parameter keeps its LSTM state in ``self.state``; any shapes work (coordinate-wise).
    """

    def __init__(self, params, net: CoordinatewiseLSTM) -> None:
        super().__init__(params, {})
        self.net = net

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "lstm" not in state:
                    state["lstm"] = self.net.initial_state(p.numel())
                update, state["lstm"] = self.net(p.grad.reshape(-1), state["lstm"])
                p.add_(update.view_as(p))
        return loss
