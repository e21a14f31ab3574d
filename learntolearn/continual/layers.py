"""The continual learners' output-layer resets: a class's row before its meta-training trajectory, the whole
layer before a meta-test stream."""

from __future__ import annotations

import torch

from learntolearn.algorithms.inner import Params


def reset_output_row(params: Params, name: str, row: int, generator: torch.Generator) -> None:
    """Re-draw one class's output weights (Kaiming normal) and zero its bias, in place: before a meta-training
    trajectory on that class, so it is learnt from scratch inside the trajectory (OML's and ANML's code)."""
    weight = params[f"{name}.weight"]
    with torch.no_grad():
        weight[row] = torch.randn(weight.shape[1], generator=generator) * (2 / weight.shape[1]) ** 0.5
        params[f"{name}.bias"][row] = 0.0


def with_fresh_output(params: Params, name: str, generator: torch.Generator, outputs: int | None = None) -> Params:
    """A copy of ``params`` whose output layer is re-drawn (Kaiming normal, zero bias), cut to its first ``outputs``
    units if given: where learning a stream starts at meta-test, as the authors' evaluation does."""
    weight = params[f"{name}.weight"]
    shape = (outputs or weight.shape[0], weight.shape[1])
    fresh = torch.randn(shape, generator=generator) * (2 / weight.shape[1]) ** 0.5
    return {**params, f"{name}.weight": fresh, f"{name}.bias": torch.zeros(shape[0])}
