"""The episode type shared by data, algorithms and the evaluator, and the parameter dicts of pure functions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: a network's parameters by name, the argument of pure functions over parameters (``torch.func``)
Params = dict[str, Tensor]


@dataclass(frozen=True)
class Task:
    """One N-way K-shot episode.

    Attributes:
        support_x: support inputs, shape ``(N*K, *input_shape)``, grouped by class.
        support_y: support labels in ``0..N-1``, shape ``(N*K,)``.
        query_x: query inputs, shape ``(N*Q, *input_shape)``.
        query_y: query labels in ``0..N-1`` (classification) or targets (regression).
        class_ids: original class index of each episode label in its data set, shape ``(N,)``;
            label ``i`` of this episode is class ``class_ids[i]`` of the source (empty for regression).
        parameters: what generated a synthetic task, e.g. sinusoid ``(amplitude, phase)``; else None.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    class_ids: Tensor
    parameters: Tensor | None = None

    @property
    def ways(self) -> int:
        return int(self.class_ids.shape[0])

    def to(self, device: torch.device | str) -> Task:
        return Task(
            self.support_x.to(device),
            self.support_y.to(device),
            self.query_x.to(device),
            self.query_y.to(device),
            self.class_ids.to(device),
            None if self.parameters is None else self.parameters.to(device),
        )
