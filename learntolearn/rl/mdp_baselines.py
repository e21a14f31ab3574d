"""Reference learners for RL²'s tabular MDPs (Duan et al. 2016, Table 2), on a batch of tasks at once.

A trial is ``episodes`` episodes of ``horizon`` steps in one MDP, every episode from state 0. Each learner
fixes, at the start of an episode, a table of actions per (step, state):

* random - uniform actions;
* oracle - the optimal finite-horizon policy of the true MDP (an upper bound no learner reaches);
* PSRL (Strens 2000; Osband et al. 2013) - the optimal policy of one MDP drawn from the posterior: a
  Dirichlet(1 + counts) per transition row and, for the reward means, the normal posterior of the task
  prior N(1, 1) with unit-variance rewards;
* greedy and epsilon-greedy - the optimal policy of the MDP estimated from what was seen (certainty
  equivalence; untried actions' transitions uniform), with a random action at each step with probability
  epsilon, as in Osband's TabulaRL code, whose learners RL²'s Table 2 compares against. TabulaRL's default
  prior values an untried action's reward at 0, below the tasks' mean of 1, so its greedy learner seldom
  tries a new action once one has paid; the rows with untried actions worth the prior mean 1 explore.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from learntolearn.errors import TaskError
from learntolearn.rl.tasks import MDPParameters, TabularMDPs


def optimal_actions(transitions: Tensor, reward_means: Tensor, horizon: int) -> tuple[Tensor, Tensor]:
    """Finite-horizon dynamic programming: the best action per (task, step, state) ``[T, H, S]`` and the
    optimal expected return from each state at the first step ``[T, S]``. ``reward_means`` is ``[T, S, A]``,
    or ``[T, H, S, A]`` for rewards that differ from step to step."""
    tasks, states = reward_means.shape[0], reward_means.shape[-2]
    values = torch.zeros(tasks, states, dtype=reward_means.dtype)
    best = torch.empty(tasks, horizon, states, dtype=torch.long)
    for step in reversed(range(horizon)):
        rewards = reward_means if reward_means.dim() == 3 else reward_means[:, step]
        q = rewards + torch.einsum("tsan,tn->tsa", transitions, values)
        values, best[:, step] = q.max(dim=-1)
    return best, values


class Posterior:
    """Counts of what a learner saw in each task: transitions and reward sums per (state, action)."""

    def __init__(self, tasks: int, mdps: TabularMDPs) -> None:
        shape = (tasks, mdps.states, mdps.actions)
        self.transitions = torch.zeros(*shape, mdps.states, dtype=torch.float64)
        self.visits = torch.zeros(shape, dtype=torch.float64)
        self.reward_sums = torch.zeros(shape, dtype=torch.float64)

    def update(self, states: Tensor, actions: Tensor, following: Tensor, rewards: Tensor) -> None:
        task = torch.arange(len(states))
        self.transitions[task, states, actions, following] += 1
        self.visits[task, states, actions] += 1
        self.reward_sums[task, states, actions] += rewards

    def sample(self, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):  # torch's Gamma sampler takes no generator
            torch.manual_seed(seed)
            gammas = torch._standard_gamma(1.0 + self.transitions)
            transitions = gammas / gammas.sum(-1, keepdim=True)
            precision = 1.0 + self.visits  # prior N(1, 1), unit-variance rewards
            means = (1.0 + self.reward_sums) / precision + torch.randn(
                self.visits.shape, dtype=torch.float64
            ) / precision.sqrt()
        return transitions, means

    def estimate(self, unseen_mean: float = 1.0, prior_weight: float = 1e-4) -> tuple[Tensor, Tensor]:
        """The posterior-mean MDP under a nearly flat prior of weight ``prior_weight``: the empirical transition
        frequencies and reward means where a (state, action) was tried, uniform transitions and reward mean
        ``unseen_mean`` where it was not."""
        counts = prior_weight + self.transitions
        means = (prior_weight * unseen_mean + self.reward_sums) / (prior_weight + self.visits)
        return counts / counts.sum(-1, keepdim=True), means


#: (true parameters, posterior, generator) -> actions per (task, step, state) for the next episode
Learner = Callable[[MDPParameters, Posterior, torch.Generator | None], Tensor]


def random_policy(mdps: TabularMDPs) -> Learner:
    def learner(parameters: MDPParameters, posterior: Posterior, generator: torch.Generator | None) -> Tensor:
        tasks = len(parameters.reward_means)
        return torch.randint(mdps.actions, (tasks, mdps.horizon, mdps.states), generator=generator)

    return learner


def oracle_policy(mdps: TabularMDPs) -> Learner:
    def learner(parameters: MDPParameters, posterior: Posterior, generator: torch.Generator | None) -> Tensor:
        return optimal_actions(parameters.transitions, parameters.reward_means, mdps.horizon)[0]

    return learner


def psrl_policy(mdps: TabularMDPs) -> Learner:
    def learner(parameters: MDPParameters, posterior: Posterior, generator: torch.Generator | None) -> Tensor:
        return optimal_actions(*posterior.sample(generator), mdps.horizon)[0]

    return learner


def greedy_policy(mdps: TabularMDPs, epsilon: float = 0.0, unseen_mean: float = 1.0) -> Learner:
    """The optimal policy of the estimated MDP (ties broken at random; an untried action's reward mean taken to
    be ``unseen_mean``), each action replaced by a random one with probability ``epsilon``."""
    if not 0.0 <= epsilon <= 1.0:
        raise TaskError(f"epsilon is a probability, between 0 and 1, not {epsilon}")

    def learner(parameters: MDPParameters, posterior: Posterior, generator: torch.Generator | None) -> Tensor:
        transitions, means = posterior.estimate(unseen_mean)
        # a tiny reward of its own for every (step, state, action) breaks ties at random at every step
        tie_break = 1e-9 * torch.rand(
            len(means), mdps.horizon, *means.shape[1:], generator=generator, dtype=means.dtype
        )
        plan = optimal_actions(transitions, means[:, None] + tie_break, mdps.horizon)[0]
        explore = torch.rand(plan.shape, generator=generator) < epsilon
        return torch.where(explore, torch.randint(mdps.actions, plan.shape, generator=generator), plan)

    return learner


#: the table's rows in order; new learners go last, since each row's seed follows its position
LEARNERS: dict[str, Callable[[TabularMDPs], Learner]] = {
    "random": random_policy,
    "PSRL": psrl_policy,
    "oracle (MDP known)": oracle_policy,
    "greedy (untried: 0)": partial(greedy_policy, unseen_mean=0.0),
    "epsilon-greedy 0.1 (untried: 0)": partial(greedy_policy, epsilon=0.1, unseen_mean=0.0),
    "greedy (untried: prior mean 1)": greedy_policy,
    "epsilon-greedy 0.1 (untried: prior mean 1)": partial(greedy_policy, epsilon=0.1),
}


def run_trials(
    learner: Learner,
    mdps: TabularMDPs,
    parameters: MDPParameters,
    episodes: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Total reward of each task's trial, ``[tasks]``."""
    mdps.check(parameters)
    if episodes < 1:
        raise TaskError(f"a trial needs at least one episode, not {episodes}")
    tasks = len(parameters.reward_means)
    posterior = Posterior(tasks, mdps)
    total = torch.zeros(tasks, dtype=torch.float64)
    rows = torch.arange(tasks)
    for _ in range(episodes):
        plan = learner(parameters, posterior, generator)
        states = mdps.reset(parameters)[:, 0]
        for step in range(mdps.horizon):
            actions = plan[rows, step, states]
            following, rewards = mdps.step(parameters, states[:, None], actions[:, None], generator)
            posterior.update(states, actions, following[:, 0], rewards[:, 0])
            total += rewards[:, 0]
            states = following[:, 0]
    return total
