"""What a client computes on its own data in each federated algorithm, as pure functions over parameters.

Every algorithm here sends the server a model and the server averages the models it receives (FedAvg's
aggregation, McMahan et al. 2017); the algorithms differ only in the client's local computation:

- ``fedavg``: SGD on the client's examples (McMahan et al. 2017);
- ``per-fedavg``: Per-FedAvg (Fallah, Mokhtari & Ozdaglar, NeurIPS 2020, Algorithm 1): local MAML steps,
  first order (``per-fedavg-fo``) or with the Hessian-vector product taken by finite differences of gradients
  (``per-fedavg-hf``, their Eq. 11);
- ``fedmeta-maml`` / ``fedmeta-protonet``: FedMeta (Chen et al. 2018, Algorithm 1): the client computes the
  meta-gradient of its query loss (after MAML's inner step on its support set, or through Prototypical
  Networks' prototypes) and returns the model moved by ``meta_lr`` along it, so that the server's average
  is the meta-update ``theta - meta_lr * mean(g)``.

Personalisation is the same for every classifier: ``adapt_steps`` gradient steps on the client's support set
from the received model (FedAvg + fine-tuning, and the meta-learned initialisations); Prototypical Networks
classify by the nearest support prototype.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.algorithms.inner import sgd_inner_loop
from learntolearn.errors import UnknownNameError
from learntolearn.nn.distances import prototypes, squared_euclidean
from learntolearn.nn.functional import conv_features, conv_stack, init_conv_stack, init_linear, linear
from learntolearn.types import Params, Task

ALGORITHMS = ("fedavg", "fedavg-ft", "per-fedavg-fo", "per-fedavg-hf", "fedmeta-maml", "fedmeta-protonet")


class LocalModel(Protocol):
    """A classifier as pure functions of its parameters: ``embed`` (its body) and ``logits`` (body and head)."""

    @property
    def outputs(self) -> int: ...

    def init(self, seed: int, *, head: bool = True) -> Params: ...

    def embed(self, params: Params, x: Tensor) -> Tensor: ...

    def logits(self, params: Params, x: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class ConvClassifier:
    """A three-layer convolutional network on 28x28 grey images with a linear head; its batch norms use each
    batch's own statistics (no running statistics, which would mix clients)."""

    channels: int = 32
    outputs: int = 5

    def init(self, seed: int, *, head: bool = True) -> Params:
        generator = torch.Generator().manual_seed(seed)
        params = init_conv_stack("body", self.channels, generator, norm=True)
        if head:
            params |= init_linear("head", conv_features(self.channels), self.outputs, generator)
        return params

    def embed(self, params: Params, x: Tensor) -> Tensor:
        return conv_stack(params, "body", x)

    def logits(self, params: Params, x: Tensor) -> Tensor:
        return linear(params, "head", self.embed(params, x))


@dataclass(frozen=True)
class FeatureClassifier:
    """Two ReLU layers on fixed feature vectors (e.g. sentence embeddings) with a linear head."""

    inputs: int = 384
    hidden: int = 256
    outputs: int = 5

    def init(self, seed: int, *, head: bool = True) -> Params:
        generator = torch.Generator().manual_seed(seed)
        params = init_linear("body.0", self.inputs, self.hidden, generator)
        params |= init_linear("body.1", self.hidden, self.hidden, generator)
        if head:
            params |= init_linear("head", self.hidden, self.outputs, generator)
        return params

    def embed(self, params: Params, x: Tensor) -> Tensor:
        return F.relu(linear(params, "body.1", F.relu(linear(params, "body.0", x))))

    def logits(self, params: Params, x: Tensor) -> Tensor:
        return linear(params, "head", self.embed(params, x))


@dataclass(frozen=True)
class LocalSettings:
    lr: float = 0.1  # FedAvg's local SGD rate; Per-FedAvg's outer rate beta
    inner_lr: float = 0.4  # MAML's and Per-FedAvg's inner rate alpha, and the personalisation rate
    meta_lr: float = 1.0  # FedMeta's meta-update rate
    adapt_steps: int = 3  # gradient steps on the support set when personalising
    hessian_delta: float = 1e-5  # Per-FedAvg HF: finite-difference step, small enough to rarely cross a ReLU switch


def uses_head(algorithm: str) -> bool:
    return algorithm != "fedmeta-protonet"


def cross_entropy(model: LocalModel, params: Params, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(model.logits(params, x), y)


def gradient(model: LocalModel, params: Params, x: Tensor, y: Tensor) -> Params:
    return torch.func.grad(lambda p: cross_entropy(model, p, x, y))(params)


def step(params: Params, grads: Params, rate: float) -> Params:
    return {n: p - rate * grads[n] for n, p in params.items()}


def fedavg_update(model: LocalModel, params: Params, tasks: Iterable[Task], lr: float) -> Params:
    """One SGD step on each task's examples (support and queries together)."""
    for task in tasks:
        x, y = torch.cat([task.support_x, task.query_x]), torch.cat([task.support_y, task.query_y])
        params = step(params, gradient(model, params, x, y), lr)
    return params


def per_fedavg_direction(
    model: LocalModel, params: Params, task: Task, inner_lr: float, *, hessian_free: bool, delta: float
) -> Params:
    """Per-FedAvg's estimate of the MAML gradient on one task: ``D`` = the support set, ``D'`` = the queries and,
    for the Hessian-free variant, ``D''`` = the support set again (the Hessian of the inner loss)."""
    inner = step(params, gradient(model, params, task.support_x, task.support_y), inner_lr)
    outer = gradient(model, inner, task.query_x, task.query_y)
    if not hessian_free:
        return outer
    plus = gradient(model, step(params, outer, -delta), task.support_x, task.support_y)
    minus = gradient(model, step(params, outer, delta), task.support_x, task.support_y)
    return {n: g - inner_lr * (plus[n] - minus[n]) / (2 * delta) for n, g in outer.items()}


def per_fedavg_update(
    model: LocalModel, params: Params, tasks: Iterable[Task], settings: LocalSettings, *, hessian_free: bool
) -> Params:
    for task in tasks:
        direction = per_fedavg_direction(
            model, params, task, settings.inner_lr, hessian_free=hessian_free, delta=settings.hessian_delta
        )
        params = step(params, direction, settings.lr)
    return params


def maml_query_loss(model: LocalModel, params: Params, task: Task, inner_lr: float) -> Tensor:
    """The query loss after one inner SGD step on the support set (second order through that step)."""
    fast = sgd_inner_loop(lambda p: cross_entropy(model, p, task.support_x, task.support_y), params, 1, inner_lr)
    return cross_entropy(model, fast, task.query_x, task.query_y)


def protonet_logits(model: LocalModel, params: Params, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
    """Negative squared distances to the support prototypes over ``outputs`` labels; labels without support
    examples get ``-inf``."""
    ways = model.outputs
    centres = prototypes(model.embed(params, support_x), support_y, ways)
    logits = -squared_euclidean(model.embed(params, query_x), centres)
    present = torch.bincount(support_y, minlength=ways) > 0
    return logits.masked_fill(~present, float("-inf"))


def protonet_query_loss(model: LocalModel, params: Params, task: Task) -> Tensor:
    return F.cross_entropy(protonet_logits(model, params, task.support_x, task.support_y, task.query_x), task.query_y)


def fedmeta_update(
    model: LocalModel, params: Params, tasks: Iterable[Task], settings: LocalSettings, *, learner: str
) -> Params:
    """``params - meta_lr * g`` with ``g`` the mean meta-gradient of the query losses over ``tasks``."""
    tasks = list(tasks)

    def mean_query_loss(p: Params) -> Tensor:
        if learner == "maml":
            losses = [maml_query_loss(model, p, task, settings.inner_lr) for task in tasks]
        else:
            losses = [protonet_query_loss(model, p, task) for task in tasks]
        return torch.stack(losses).mean()

    return step(params, torch.func.grad(mean_query_loss)(params), settings.meta_lr)


def local_update(
    algorithm: str, model: LocalModel, params: Params, tasks: list[Task], settings: LocalSettings
) -> Params:
    """The model a client sends back after its local computation on ``tasks``."""
    if algorithm in ("fedavg", "fedavg-ft"):
        return fedavg_update(model, params, tasks, settings.lr)
    if algorithm in ("per-fedavg-fo", "per-fedavg-hf"):
        return per_fedavg_update(model, params, tasks, settings, hessian_free=algorithm == "per-fedavg-hf")
    if algorithm in ("fedmeta-maml", "fedmeta-protonet"):
        return fedmeta_update(model, params, tasks, settings, learner=algorithm.removeprefix("fedmeta-"))
    raise UnknownNameError(f"unknown federated algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")


def personalised_predictions(
    algorithm: str, model: LocalModel, params: Params, task: Task, settings: LocalSettings
) -> Tensor:
    """The client's predicted labels for ``task``'s queries after personalising on its support set (plain FedAvg
    uses the global model as it is)."""
    if algorithm == "fedmeta-protonet":
        return protonet_logits(model, params, task.support_x, task.support_y, task.query_x).argmax(-1)
    if algorithm != "fedavg":
        params = sgd_inner_loop(
            lambda p: cross_entropy(model, p, task.support_x, task.support_y),
            params,
            settings.adapt_steps,
            settings.inner_lr,
            first_order=True,
        )
    return model.logits(params, task.query_x).argmax(-1)


def personalised_accuracy(
    algorithm: str, model: LocalModel, params: Params, task: Task, settings: LocalSettings
) -> float:
    with torch.no_grad() if algorithm in ("fedavg", "fedmeta-protonet") else torch.enable_grad():
        predicted = personalised_predictions(algorithm, model, params, task, settings)
    return float((predicted == task.query_y).float().mean())
