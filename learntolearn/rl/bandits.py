"""Hand-designed bandit learners, the references RL² is compared with (Duan et al. 2016, Table 1), played on a
batch of tasks at once: each strategy maps the pulls and successes so far to the next arm of every task.

* random; the oracle (the best arm from the start, an upper bound no learner reaches);
* greedy - every arm once, then the best empirical mean;
* epsilon-greedy - greedy, but a random arm with probability ``epsilon``;
* UCB1 (Auer et al. 2002) - every arm once, then the highest ``mean + c sqrt(2 ln t / n)``;
* Thompson sampling (Thompson 1933) - a draw from each arm's Beta(1 + successes, 1 + failures) posterior.

Ties are broken at random, so no arm is favoured by its index.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from learntolearn.errors import TaskError
from learntolearn.rl.tasks import BernoulliBandits

#: (pulls [tasks, arms], successes [tasks, arms], step, probabilities [tasks, arms], generator) -> arms [tasks]
Strategy = Callable[[Tensor, Tensor, int, Tensor, torch.Generator | None], Tensor]


def argmax_random_ties(values: Tensor, generator: torch.Generator | None) -> Tensor:
    noise = torch.rand(values.shape, generator=generator, dtype=values.dtype) * 1e-9
    best = values.max(dim=1, keepdim=True).values
    return torch.where(values >= best, 1.0 + noise, noise).argmax(dim=1)


def untried_first(pulls: Tensor, scores: Tensor, generator: torch.Generator | None) -> Tensor:
    return argmax_random_ties(torch.where(pulls == 0, torch.inf, scores), generator)


def random_arm(
    pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
) -> Tensor:
    return torch.randint(pulls.shape[1], (len(pulls),), generator=generator)


def oracle(
    pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
) -> Tensor:
    return argmax_random_ties(probabilities, generator)


def greedy(
    pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
) -> Tensor:
    return untried_first(pulls, successes / pulls.clamp(min=1), generator)


def epsilon_greedy(epsilon: float = 0.1) -> Strategy:
    if not 0 <= epsilon <= 1:
        raise TaskError(f"epsilon {epsilon} must lie in [0, 1]")

    def strategy(
        pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        explore = torch.rand(len(pulls), generator=generator) < epsilon
        chosen = greedy(pulls, successes, step, probabilities, generator)
        return torch.where(explore, random_arm(pulls, successes, step, probabilities, generator), chosen)

    return strategy


def ucb1(c: float = 1.0) -> Strategy:
    def strategy(
        pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        bonus = c * torch.sqrt(2 * torch.log(torch.tensor(max(step, 1), dtype=pulls.dtype)) / pulls.clamp(min=1))
        return untried_first(pulls, successes / pulls.clamp(min=1) + bonus, generator)

    return strategy


def thompson(
    pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
) -> Tensor:
    # Beta(a, b) as Gamma(a) / (Gamma(a) + Gamma(b)); torch's Gamma sampler takes no generator, so draw
    # the seed from the generator for reproducibility
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = torch.distributions.Beta(1 + successes, 1 + pulls - successes).sample()
    return argmax_random_ties(draws, generator)


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "random": lambda: random_arm,
    "greedy": lambda: greedy,
    "epsilon-greedy (0.1)": lambda: epsilon_greedy(0.1),
    "UCB1": lambda: ucb1(1.0),
    "Thompson sampling": lambda: thompson,
    "oracle (best arm known)": lambda: oracle,
}


def play(
    strategy: Strategy,
    bandits: BernoulliBandits,
    probabilities: Tensor,
    pulls: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Total reward of each task's ``pulls`` pulls, ``[tasks]``."""
    bandits.check(probabilities)
    if pulls < 1:
        raise TaskError(f"a trial needs at least one pull, not {pulls}")
    tasks = len(probabilities)
    counts = torch.zeros(tasks, bandits.arms, dtype=torch.float64)
    successes = torch.zeros_like(counts)
    total = torch.zeros(tasks, dtype=torch.float64)
    rows = torch.arange(tasks)
    for step in range(pulls):
        arms = strategy(counts, successes, step, probabilities, generator)
        rewards = bandits.pull(probabilities, arms, generator)
        counts[rows, arms] += 1
        successes[rows, arms] += rewards
        total += rewards
    return total
