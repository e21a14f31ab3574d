"""Meta-learner LSTM (Ravi & Larochelle, "Optimization as a Model for Few-Shot Learning", ICLR 2017).

The learner's parameters are the cell state of an LSTM whose update is gradient descent with learned,
per-coordinate gates (Eq. 2):

    theta_t = f_t * theta_{t-1} - i_t * grad_t
    i_t = sigmoid(W_I [grad_t, L_t, theta_{t-1}, i_{t-1}] + b_I)         (a learned step size)
    f_t = sigmoid(W_F [grad_t, L_t, theta_{t-1}, f_{t-1}] + b_F)         (a learned shrinkage)

with the initial cell state ``theta_0`` meta-learned too. ``W_I`` and ``W_F`` are shared by all
coordinates of all parameters (Section 3.2), gradients and losses enter preprocessed as in
Andrychowicz et al. 2016 (Appendix A), ``b_F`` starts large (``f ~ 1``) and ``b_I`` at the logit of
``inner_lr`` (``i ~ inner_lr``), so training starts from first-order MAML's update. As in the paper
(Section 3.3), the gradients are inputs to the meta-learner and are not differentiated through.
Deviation: the paper feeds the gates from a first, ordinary LSTM layer over (grad, loss); here they
read the preprocessed (grad, loss) directly. BatchNorm uses batch statistics as in the MAML family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS
from learntolearn.algorithms.gradient import GradientLearner
from learntolearn.algorithms.inner import InnerLoopConfig, Params, preprocess_gradient
from learntolearn.errors import ConfigError
from learntolearn.settings import setting

FORGET_BIAS = 5.0  # sigmoid(5) = 0.993: the learner starts close to keeping its parameters


@dataclass(frozen=True)
class MetaLSTMConfig(InnerLoopConfig):
    """The meta-learner LSTM's settings; ``inner_lr`` is the input gate's initial value, a probability."""

    section = "metalstm"

    inner_lr: float = setting(0.4, "Initial value of the input gate (the learner's first step size), in (0, 1).")

    def check(self) -> None:
        super().check()
        if not 0 < self.inner_lr < 1:
            raise ConfigError(
                f"metalstm's input gate starts at inner_lr, a probability: need 0 < inner_lr < 1, got {self.inner_lr}"
            )


@ALGORITHMS.register("metalstm")
class MetaLearnerLSTM(GradientLearner):
    """The learner ``model``, its meta-learned initialisation, and the gate networks that update it."""

    Config = MetaLSTMConfig
    supports_regression = False

    def __init__(self, model: nn.Module, **options) -> None:
        MetaLSTMConfig(inner_lr=options.get("inner_lr", 0.4))  # the input gate's rule, before the model changes
        super().__init__(model, **options)
        self.input_gate, self.forget_gate = nn.Linear(6, 1), nn.Linear(6, 1)
        with torch.no_grad():
            for gate, bias in (
                (self.input_gate, math.log(self.inner_lr / (1 - self.inner_lr))),
                (self.forget_gate, FORGET_BIAS),
            ):
                gate.weight.zero_()
                gate.bias.fill_(bias)

    def fast_weights(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> Params:
        params: Params = dict(self.model.named_parameters())
        gates = {
            n: (
                torch.full_like(p, torch.sigmoid(self.input_gate.bias).item()),
                torch.full_like(p, torch.sigmoid(self.forget_gate.bias).item()),
            )
            for n, p in params.items()
        }
        for step in range(self.inner_steps_now()):
            with torch.enable_grad():
                detached = {n: p.detach().requires_grad_() for n, p in params.items()}
                loss = self.checked_loss(self.forward_with(detached, support_x), support_y, ways)
                grads = dict(zip(detached, torch.autograd.grad(loss, list(detached.values()))))
            if check_finite and not math.isfinite(loss.item()):
                raise FloatingPointError(f"the learner's loss became {loss.item()} at inner step {step + 1}")
            loss_features = preprocess_gradient(loss.detach())
            updated = {}
            for name, theta in params.items():
                shared = torch.cat(
                    [preprocess_gradient(grads[name]), loss_features.expand(*theta.shape, 2), theta.unsqueeze(-1)],
                    dim=-1,
                )
                previous_i, previous_f = gates[name]
                i = torch.sigmoid(self.input_gate(torch.cat([shared, previous_i.unsqueeze(-1)], -1))).squeeze(-1)
                f = torch.sigmoid(self.forget_gate(torch.cat([shared, previous_f.unsqueeze(-1)], -1))).squeeze(-1)
                updated[name] = f * theta - i * grads[name]
                gates[name] = (i, f)
            params = updated
        return params
