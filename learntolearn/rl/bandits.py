"""Hand-designed bandit learners, the references RL² is compared with (Duan et al. 2016, Table 1), played on a
batch of tasks at once: each strategy maps the pulls and successes so far to the next arm of every task.

* random; the oracle (the best arm from the start, an upper bound no learner reaches);
* greedy - every arm once, then the best empirical mean;
* epsilon-greedy - greedy, but a random arm with probability ``epsilon``;
* greedy on posterior means - the arm of highest Beta(1 + successes, 1 + failures) mean, so an untried arm is
  worth 1/2 and one that failed once is left for another (with a random arm with probability ``epsilon``);
* UCB1 (Auer et al. 2002) - every arm once, then the highest ``mean + c sqrt(2 ln t / n)``;
* Thompson sampling (Thompson 1933) - a draw from each arm's Beta(1 + successes, 1 + failures) posterior;
* the Gittins index (Gittins 1979) of each arm's Beta posterior for a discount factor: Bayes-optimal for the
  infinite discounted problem, a strong heuristic for a fixed number of pulls (the discount is then tuned).

Ties are broken at random, so no arm is favoured by its index.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
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


def posterior_mean_greedy(
    pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
) -> Tensor:
    return argmax_random_ties((1 + successes) / (2 + pulls), generator)


def epsilon_greedy(epsilon: float = 0.1, exploit: Strategy = greedy) -> Strategy:
    """``exploit``'s arm, or a random arm with probability ``epsilon``."""
    if not 0 <= epsilon <= 1:
        raise TaskError(f"epsilon {epsilon} must lie in [0, 1]")

    def strategy(
        pulls: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        explore = torch.rand(len(pulls), generator=generator) < epsilon
        chosen = exploit(pulls, successes, step, probabilities, generator)
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


@lru_cache(maxsize=64)
def gittins_indices(discount: float, max_pulls: int, depth: int = 300, grid: int = 2001) -> np.ndarray:
    """Gittins indices ``[s, f]`` of a Bernoulli arm with a Beta(1, 1) prior after ``s`` successes and ``f``
    failures (``s + f <= max_pulls``), per pull, for ``discount`` in [0, 1).

    Whittle's retirement calibration: with a lump sum ``M`` for retiring, ``V(a, b) = max(M, mu + discount *
    (mu V(a + 1, b) + (1 - mu) V(a, b + 1)))``, ``mu = a / (a + b)``; the index is ``(1 - discount) * M`` at the
    smallest ``M`` where retiring is optimal. The value functions of ``grid`` rates in [0, 1] are computed
    together by backward induction over the posterior lattice, cut ``depth`` pulls beyond ``max_pulls`` (there
    the arm is valued as if nothing more were learnt), and each index is interpolated between grid rates.
    """
    if not 0 <= discount < 1:
        raise TaskError(f"the Gittins index needs a discount in [0, 1), not {discount}")
    rates = np.linspace(0.0, 1.0, grid)
    retire = rates[:, None] / (1 - discount)
    last = max_pulls + depth
    means = (1 + np.arange(last + 1)) / (2 + last)
    values = np.maximum(retire, means[None, :] / (1 - discount))
    indices = np.full((max_pulls + 1, max_pulls + 1), np.nan)
    for pulled in range(last - 1, -1, -1):
        successes = np.arange(pulled + 1)
        means = (1 + successes) / (2 + pulled)
        carry_on = means + discount * (means * values[:, 1:] + (1 - means) * values[:, :-1])
        values = np.maximum(retire, carry_on)
        if pulled <= max_pulls:
            gain = carry_on - retire  # > 0 where pulling beats retiring
            first = np.argmax(gain <= 0, axis=0)  # the first rate at which retiring is optimal
            before, at = gain[first - 1, successes], gain[first, successes]
            step = rates[1] - rates[0]
            indices[successes, pulled - successes] = rates[first - 1] + step * before / (before - at)
    return indices


def gittins(discount: float, pulls: int | None = None) -> Strategy:
    """The arm of highest Gittins index for ``discount``; the indices are computed for trials of ``pulls``
    pulls (if not given, for twice the pulls seen so far, again whenever a trial runs longer)."""
    if not 0 <= discount < 1:
        raise TaskError(f"the Gittins index needs a discount in [0, 1), not {discount}")
    table: dict[str, Tensor] = {}

    def strategy(
        pulls_so_far: Tensor, successes: Tensor, step: int, probabilities: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        if "indices" not in table or table["indices"].shape[0] <= step:
            size = pulls if pulls is not None and pulls > step else max(2 * step, 10)
            table["indices"] = torch.from_numpy(gittins_indices(discount, size))
        s, f = successes.long(), (pulls_so_far - successes).long()
        return argmax_random_ties(table["indices"][s, f], generator)

    return strategy


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "random": lambda: random_arm,
    "greedy": lambda: greedy,
    "epsilon-greedy (0.1)": lambda: epsilon_greedy(0.1),
    "UCB1": lambda: ucb1(1.0),
    "Thompson sampling": lambda: thompson,
    "oracle (best arm known)": lambda: oracle,
    # with epsilon 0 the draw of whether to explore is still made, as when the table's figures were computed
    "greedy (posterior mean)": lambda: epsilon_greedy(0.0, posterior_mean_greedy),
    "epsilon-greedy 0.1 (posterior mean)": lambda: epsilon_greedy(0.1, posterior_mean_greedy),
}
#: rows added to the table after its tuned rows: they draw their seeds after them, so earlier rows keep theirs
LATER_ROWS = ("greedy (posterior mean)", "epsilon-greedy 0.1 (posterior mean)")


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
