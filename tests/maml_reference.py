"""MAML references for the gradient and learning tiers: tiny float64 tasks, small nets, a hand-unrolled meta-loss."""

import torch
import torch.nn.functional as F
from torch import nn

from learntolearn.algorithms.maml import MAML
from learntolearn.testing import random_task

WAYS, SHOTS, QUERIES = 3, 2, 2


def mlp_with_batchnorm() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, WAYS)).double()


def conv_with_batchnorm() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 2 * 2, WAYS),
    ).double()


def tasks(count=3, shape=(4,)):
    g = torch.Generator().manual_seed(1)
    return [random_task(WAYS, SHOTS, QUERIES, shape, torch.float64, g) for _ in range(count)]


def reference_meta_loss(model: nn.Module, params: list[torch.Tensor], batch, lr, steps, first_order=False):
    """Hand-unrolled MAML with torch.autograd.grad(create_graph=True) and batch-statistics BatchNorm."""
    names = [n for n, _ in model.named_parameters()]

    def forward(ps, x):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,))

    losses = []
    for task in batch:
        fast = list(params)
        for _ in range(steps):
            grads = torch.autograd.grad(
                F.cross_entropy(forward(fast, task.support_x), task.support_y), fast, create_graph=not first_order
            )
            fast = [p - lr * (g.detach() if first_order else g) for p, g in zip(fast, grads)]
        losses.append(F.cross_entropy(forward(fast, task.query_x), task.query_y))
    return torch.stack(losses).mean()


def meta_gradient(maml: MAML, batch):
    maml.train()
    maml.zero_grad()
    maml.meta_loss(batch).loss.backward()
    return [p.grad.clone() for p in maml.model.parameters()]
