"""Out-of-scope rejection (Larson et al. 2019, CLINC150): a query whose best class score is below a
threshold is answered "none of these classes".

The score is the highest output of the algorithm's ``predict`` (for cosine prototypes, the cosine
similarity to the nearest class mean). The threshold is chosen on meta-train episodes, never on
test ones, to maximise the mean of in-scope accuracy (a rejected in-scope query counts as wrong)
and out-of-scope recall (the share of out-of-scope queries rejected).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.algorithms.base import Algorithm
from learntolearn.engine.evaluate import Evaluation, adapt_and_predict
from learntolearn.types import Task


@dataclass(frozen=True)
class RejectionResult:
    """Per-episode in-scope accuracy and out-of-scope recall at ``threshold``."""

    in_scope_accuracy: Evaluation
    out_of_scope_recall: Evaluation
    threshold: float


def _scores(
    algorithm: Algorithm, tasks: Iterable[Task], out_of_scope: Tensor, per_episode: int, seed: int
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """For each episode: best score and correctness of its in-scope queries, best score of its out-of-scope ones."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for task in tasks:
        extra = out_of_scope[torch.randperm(len(out_of_scope), generator=generator)[:per_episode]]
        outputs = adapt_and_predict(algorithm, task.support_x, task.support_y, torch.cat([task.query_x, extra]))
        best, predicted = outputs.max(-1)
        n = len(task.query_y)
        rows.append((best[:n], predicted[:n] == task.query_y, best[n:]))
    return rows


def choose_threshold(
    algorithm: Algorithm, tasks: Iterable[Task], out_of_scope: Tensor, *, per_episode: int = 15, seed: int = 0
) -> float:
    """The threshold that maximises (in-scope accuracy + out-of-scope recall) / 2 over ``tasks`` (meta-train
    episodes), each given ``per_episode`` queries drawn from ``out_of_scope`` (meta-train out-of-scope features)."""
    rows = _scores(algorithm, tasks, out_of_scope, per_episode, seed)
    in_scope, correct, oos = (torch.cat(parts) for parts in zip(*rows))
    candidates = torch.cat([in_scope, oos]).unique()
    accepted_correct = ((in_scope.unsqueeze(0) >= candidates.unsqueeze(1)) & correct).float().mean(1)
    rejected_oos = (oos.unsqueeze(0) < candidates.unsqueeze(1)).float().mean(1)
    return float(candidates[((accepted_correct + rejected_oos) / 2).argmax()])


def evaluate_with_rejection(
    algorithm: Algorithm,
    tasks: Iterable[Task],
    out_of_scope: Tensor,
    threshold: float,
    *,
    per_episode: int = 15,
    seed: int = 0,
) -> RejectionResult:
    """In-scope accuracy and out-of-scope recall per episode, each episode with ``per_episode`` out-of-scope
    queries drawn (seeded, so paired across methods) from ``out_of_scope``."""
    rows = _scores(algorithm, tasks, out_of_scope, per_episode, seed)
    accuracy = [((best >= threshold) & correct).double().mean() for best, correct, _ in rows]
    recall = [(oos < threshold).double().mean() for _, _, oos in rows]
    return RejectionResult(Evaluation(torch.stack(accuracy)), Evaluation(torch.stack(recall)), threshold)
