"""The meta-training objective OML and ANML share (Javed & White 2019, Algorithm 1; Beaulieu et al. 2020):
an inner trajectory of one SGD step per image of one class on the fast parameters, then the loss of the
resulting network on that class's images and a batch of images from other classes (the "remember" set),
differentiated through the whole trajectory (second order) unless ``first_order``."""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch
import torch.nn.functional as F
from torch import Tensor

from learntolearn.algorithms.inner import Params, sgd_inner_loop

Logits = Callable[[Params, Tensor], Tensor]


def online_trajectory(
    logits: Logits,
    params: Params,
    fast: Collection[str],
    images: Tensor,
    labels: Tensor,
    lr: float,
    *,
    first_order: bool = False,
) -> Params:
    """``params`` after one SGD step on each image in turn, updating only the ``fast`` parameters."""
    slow = {n: v for n, v in params.items() if n not in fast}
    current = {n: v for n, v in params.items() if n in fast}
    for step, (image, label) in enumerate(zip(images, labels)):

        def loss(p: Params, image: Tensor = image, label: Tensor = label) -> Tensor:
            return F.cross_entropy(logits({**slow, **p}, image[None]), label[None])

        current = sgd_inner_loop(loss, current, 1, lr, first_order=first_order, steps_before=step)
    return {**slow, **current}


def remembering_loss(
    logits: Logits,
    params: Params,
    fast: Collection[str],
    trajectory: tuple[Tensor, Tensor],
    remember: tuple[Tensor, Tensor],
    lr: float,
    *,
    first_order: bool = False,
) -> Tensor:
    """Cross-entropy, after the trajectory, on the trajectory's images and the remember set together."""
    adapted = online_trajectory(logits, params, fast, *trajectory, lr, first_order=first_order)
    images = torch.cat([trajectory[0], remember[0]])
    labels = torch.cat([trajectory[1], remember[1]])
    return F.cross_entropy(logits(adapted, images), labels)
