"""Gradient-based inner loops as pure functions over parameter dicts.

The adapted ("fast") parameters of MAML, ANIL and Meta-SGD come from one loop,

    theta_{i+1} = theta_i - alpha * grad L_support(theta_i)            (Finn et al. 2017, Eq. 1)

where ``alpha`` is a scalar (MAML) or a learned tensor per parameter (Meta-SGD, Li et al. 2017,
Eq. 3). Gradients are taken with ``torch.autograd.grad`` in eager code, and with ``torch.func.grad``
under a function transform (``vmap`` over tasks) or ``torch.compile``, where plain autograd cannot
run (:func:`grad_and_loss`); either way backpropagating through the returned parameters gives the
exact second-order meta-gradient. With ``first_order=True`` the inner gradients are detached, which
is first-order MAML: the meta-gradient drops exactly the terms that differentiate through them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.algorithms.base import AlgorithmConfig
from learntolearn.errors import ConfigError
from learntolearn.nn.norm_pool import twice_differentiable
from learntolearn.settings import setting
from learntolearn.types import Params

#: one scalar rate for every parameter, or a rate tensor per parameter name (Meta-SGD)
LearningRate = float | Tensor | Mapping[str, Tensor]
#: a rate for every step, or a function of the step (0-based) giving that step's rate (MAML++ per-step rates)
StepRates = LearningRate | Callable[[int], LearningRate]


@dataclass(frozen=True)
class InnerLoopConfig(AlgorithmConfig):
    """Settings of every algorithm that adapts by gradient steps from a meta-learned initialisation."""

    section = "inner-loop"

    inner_lr: float = setting(0.4, "Inner-loop step size in (0, 10] (the initial rate where rates are learned).")
    inner_steps: int = setting(1, "Inner steps during meta-training, 1-1000.")
    test_inner_steps: int = setting(3, "Inner steps at evaluation, 1-1000.")

    def check(self) -> None:
        check_inner_settings(self.inner_lr, self.inner_steps, self.test_inner_steps)


def in_function_transform() -> bool:
    """Whether the caller runs under a ``torch.func`` transform (``vmap``, ``grad``) or is being compiled."""
    # functorch has no public query for its current level; this is the one its own transforms read
    return torch.compiler.is_compiling() or torch._C._functorch.maybe_current_level() is not None


def grad_and_loss(loss_fn: Callable[[Params], Tensor], params: Params, *, create_graph: bool) -> tuple[Params, Tensor]:
    """The gradient of ``loss_fn`` at ``params`` and the loss, differentiable further if ``create_graph``.

    Eager code uses ``torch.autograd.grad`` directly: ``torch.func.grad`` wraps every tensor at each call
    and its first call imports TorchDynamo (tens of MB), neither of which eager code needs. Under a
    function transform or ``torch.compile`` it is ``torch.func.grad_and_value``, which always keeps the
    graph (``create_graph`` is then the caller's to honour by detaching). With ``create_graph`` the loss is
    computed with twice-differentiable operators (:func:`~learntolearn.nn.norm_pool.twice_differentiable`).
    """
    if in_function_transform():
        return torch.func.grad_and_value(loss_fn)(params)
    with torch.enable_grad(), twice_differentiable(create_graph):
        inputs = {n: p if p.requires_grad else p.detach().requires_grad_() for n, p in params.items()}
        loss = loss_fn(inputs)
        grads = torch.autograd.grad(loss, list(inputs.values()), create_graph=create_graph, allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(inputs.items(), grads, strict=True)}, loss


def sgd_trajectory(
    loss_fn: Callable[[Params], Tensor],
    params: Params,
    steps: int,
    lr: StepRates,
    *,
    first_order: bool = False,
    check_finite: bool = True,
    steps_before: int = 0,
) -> list[Params]:
    """The fast parameters after each of ``steps`` gradient steps on ``loss_fn`` from ``params``.

    ``check_finite`` stops with ``FloatingPointError`` naming the inner step whose loss is not
    finite (counting ``steps_before`` steps already taken); it must be off under ``vmap``, where values
    cannot be inspected.
    """
    trajectory = []
    for step in range(steps):
        grads, loss = grad_and_loss(loss_fn, params, create_graph=not first_order)
        if check_finite and not bool(torch.isfinite(loss)):
            raise FloatingPointError(
                f"the inner-loop loss became {loss.item()} at inner step {steps_before + step + 1}; the inner learning rate "
                f"is probably too large for this model"
            )
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        rate = lr(step) if callable(lr) else lr
        params = {n: p - (rate[n] if isinstance(rate, Mapping) else rate) * grads[n] for n, p in params.items()}
        trajectory.append(params)
    return trajectory


def sgd_inner_loop(
    loss_fn: Callable[[Params], Tensor],
    params: Params,
    steps: int,
    lr: StepRates,
    *,
    first_order: bool = False,
    check_finite: bool = True,
    steps_before: int = 0,
) -> Params:
    """Take ``steps`` gradient steps on ``loss_fn`` from ``params`` and return the fast parameters."""
    return sgd_trajectory(
        loss_fn, params, steps, lr, first_order=first_order, check_finite=check_finite, steps_before=steps_before
    )[-1]


def adam_step_no_momentum(
    loss_fn: Callable[[Params], Tensor],
    params: Params,
    second_moments: Params,
    count: int,
    lr: float,
    *,
    beta2: float = 0.999,
    eps: float = 1e-8,
    check_finite: bool = True,
    steps_before: int = 0,
) -> tuple[Params, Params]:
    """One Adam step with ``beta1 = 0`` (no momentum; Nichol et al. 2018, Appendix A), first order.

    ``second_moments`` holds Adam's running mean of squared gradients and ``count`` the number of
    steps taken before this one, both carried by the caller; returns the new parameters and moments.
    The update is Kingma & Ba's Algorithm 1 in its efficient form (Section 2), with ``m_t = g_t``:
    ``p -= lr * sqrt(1 - beta2^t) * g / (sqrt(v_t) + eps)``.
    """
    grads, loss = grad_and_loss(loss_fn, params, create_graph=False)
    if check_finite and not bool(torch.isfinite(loss)):
        raise FloatingPointError(
            f"the inner-loop loss became {loss.item()} at inner step {steps_before + 1}; the inner "
            f"learning rate is probably too large for this model"
        )
    moments = {n: beta2 * second_moments[n] + (1 - beta2) * grads[n].detach().square() for n in params}
    rate = lr * math.sqrt(1 - beta2 ** (count + 1))
    return {n: p - rate * grads[n].detach() / (moments[n].sqrt() + eps) for n, p in params.items()}, moments


def check_inner_settings(lr: float, steps: int, test_steps: int) -> None:
    """Reject inner learning rates and step counts that cannot be meant."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 < lr <= 10):
        raise ConfigError(f"the inner learning rate must be in (0, 10], got {lr}")
    for name, value in (("inner_steps", steps), ("test_inner_steps", test_steps)):
        if not (isinstance(value, int) and 1 <= value <= 1000):
            raise ConfigError(f"{name} must be an integer in [1, 1000], got {value}")


def preprocess_gradient(grad: Tensor, p: float = 10.0) -> Tensor:
    """Andrychowicz et al. 2016, Appendix A: ``(log|g| / p, sign g)`` if ``|g| >= e^-p``, else ``(-1, e^p g)``; ``(n,)`` -> ``(n, 2)``."""
    large = grad.abs() >= math.exp(-p)
    first = torch.where(large, grad.abs().clamp_min(1e-45).log() / p, torch.full_like(grad, -1.0))
    second = torch.where(large, grad.sign(), grad * math.exp(p))
    return torch.stack([first, second], dim=-1)
