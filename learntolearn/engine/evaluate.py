"""Scores on fixed episodes with a 95% confidence interval, and paired comparisons.

Classification episodes are scored by query accuracy; regression episodes (float query targets, e.g.
sinusoids) by query mean squared error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from learntolearn.algorithms.base import Algorithm, check_query
from learntolearn.types import Task


@dataclass(frozen=True)
class Evaluation:
    """Per-episode query scores; ``mean`` ± ``ci95`` = 1.96 * sd / sqrt(n) (sample sd).

    ``metric`` is ``accuracy`` (higher is better) or ``mse`` (query mean squared error, lower is better).
    """

    accuracies: Tensor
    metric: str = "accuracy"

    @property
    def selection_score(self) -> float:
        """A number that is higher for a better model, whatever the metric (for keeping the best checkpoint)."""
        return self.mean if self.metric == "accuracy" else -self.mean

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def ci95(self) -> float:
        return confidence_interval(self.accuracies)

    def __str__(self) -> str:
        if self.metric == "mse":
            return f"query MSE {self.mean:.4f} ± {self.ci95:.4f} over {len(self.accuracies)} tasks"
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f}% over {len(self.accuracies)} episodes"


def confidence_interval(values: Tensor) -> float:
    """Half-width of the normal 95% confidence interval of the mean of ``values``."""
    n = values.numel()
    if n < 2:
        return float("nan")
    return 1.96 * float(values.to(torch.float64).std(unbiased=True)) / math.sqrt(n)


def adapt_and_predict(algorithm: Algorithm, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
    """Test-time use of a trained model: adapt to a support set, return the detached outputs for the queries.

    Autograd stays on only for algorithms that adapt by gradient steps; the model is put in eval mode.
    """
    check_query(support_x, query_x)
    return predict_adapted(algorithm, adapt_for_test(algorithm, support_x, support_y), query_x)


def adapt_for_test(algorithm: Algorithm, support_x: Tensor, support_y: Tensor) -> Any:
    """The algorithm (in eval mode) adapted to a support set, to label any number of queries with
    :func:`predict_adapted`; autograd is on only for algorithms that adapt by gradient steps."""
    algorithm.eval()
    with torch.set_grad_enabled(algorithm.adapts_by_gradient), torch.inference_mode(not algorithm.adapts_by_gradient):
        return algorithm.adapt(support_x, support_y)


def predict_adapted(algorithm: Algorithm, adapted: Any, query_x: Tensor) -> Tensor:
    """Detached outputs for the queries of an adapted algorithm (see :func:`adapt_for_test`)."""
    with torch.set_grad_enabled(algorithm.adapts_by_gradient), torch.inference_mode(not algorithm.adapts_by_gradient):
        return algorithm.predict(adapted, query_x).detach()


def evaluate(
    algorithm: Algorithm,
    tasks: Iterable[Task],
    *,
    progress: bool = True,
    total: int | None = None,
    description: str = "evaluating",
) -> Evaluation:
    """Adapt to each episode's support set and score its queries; the model is left in eval mode.

    The progress bar counts to ``total``, by default ``len(tasks)`` when ``tasks`` has a length.
    """
    if total is None and isinstance(tasks, Sized):
        total = len(tasks)
    scores, metric = [], "accuracy"
    device = next(algorithm.parameters(), torch.empty(0)).device
    for task in tqdm(tasks, total=total, desc=description, unit="episode", disable=not progress, leave=False):
        task = task.to(device)
        outputs = adapt_and_predict(algorithm, task.support_x, task.support_y, task.query_x)
        if task.query_y.is_floating_point():
            metric = "mse"
            scores.append(F.mse_loss(outputs, task.query_y).item())
        else:
            scores.append((outputs.argmax(-1) == task.query_y).float().mean().item())
    return Evaluation(torch.tensor(scores, dtype=torch.float64), metric)


def paired_difference(a: Evaluation, b: Evaluation) -> tuple[float, float]:
    """Mean and 95% CI half-width of ``a - b`` on the same episodes (paired comparison)."""
    if a.accuracies.shape != b.accuracies.shape:
        raise ValueError("a paired comparison needs both methods evaluated on the same episodes")
    diff = a.accuracies - b.accuracies
    return float(diff.mean()), confidence_interval(diff)
