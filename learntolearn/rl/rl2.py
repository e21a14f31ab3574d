"""RL² (Duan et al. 2016, "Fast reinforcement learning via slow reinforcement learning"): a recurrent policy
that learns to learn within a trial, meta-trained across tasks by an ordinary RL algorithm.

The GRU reads, at every step of a trial, the observation, the previous action, the previous reward and a
flag marking the end of the previous episode; its hidden state is kept across the episodes of a trial and
reset between trials. The paper meta-trains with TRPO; this module uses PPO (Schulman et al. 2017, clipped
objective, GAE advantages) on whole trials, batched over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from learntolearn.errors import TaskError
from learntolearn.rl.tasks import BernoulliBandits, MDPParameters, TabularMDPs


class BanditTrials:
    """A trial is ``pulls`` one-step episodes of one bandit; the observation carries nothing."""

    def __init__(self, arms: int, pulls: int) -> None:
        self.bandits, self.length, self.actions, self.observations = BernoulliBandits(arms), pulls, arms, 1

    def sample(self, tasks: int, generator: torch.Generator | None) -> Tensor:
        return self.bandits.sample(tasks, generator)

    def start(self, parameters: Tensor) -> Tensor:
        return torch.zeros(len(parameters), dtype=torch.long)

    def step(
        self, parameters: Tensor, state: Tensor, actions: Tensor, step: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        rewards = self.bandits.pull(parameters, actions, generator)
        return state, rewards, torch.ones_like(rewards)


class MDPTrials:
    """A trial is ``episodes`` episodes of ``horizon`` steps in one tabular MDP, each from state 0."""

    def __init__(self, mdps: TabularMDPs, episodes: int) -> None:
        self.mdps, self.length = mdps, episodes * mdps.horizon
        self.actions, self.observations = mdps.actions, mdps.states

    def sample(self, tasks: int, generator: torch.Generator | None) -> MDPParameters:
        return self.mdps.sample(tasks, generator)

    def start(self, parameters: MDPParameters) -> Tensor:
        return self.mdps.reset(parameters)[:, 0]

    def step(
        self, parameters: MDPParameters, state: Tensor, actions: Tensor, step: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        following, rewards = self.mdps.step(parameters, state[:, None], actions[:, None], generator)
        done = torch.full((len(state),), float((step + 1) % self.mdps.horizon == 0), dtype=torch.float64)
        following = torch.where(done.bool(), torch.zeros_like(following[:, 0]), following[:, 0])
        return following, rewards[:, 0], done


Trials = BanditTrials | MDPTrials


class RL2Policy(nn.Module):
    """GRU over (observation, previous action, reward, done) -> action logits and a value."""

    def __init__(self, observations: int, actions: int, hidden: int = 256) -> None:
        super().__init__()
        self.observations, self.actions = observations, actions
        self.gru = nn.GRU(observations + actions + 2, hidden, batch_first=True)
        self.logits, self.value = nn.Linear(hidden, actions), nn.Linear(hidden, 1)

    def inputs(self, observation: Tensor, previous_action: Tensor, reward: Tensor, done: Tensor) -> Tensor:
        """One step's input ``[tasks, features]``; ``previous_action`` -1 means none yet."""
        action = nn.functional.one_hot(previous_action.clamp(min=0), self.actions).float()
        action = action * (previous_action >= 0).float()[:, None]
        observed = nn.functional.one_hot(observation, self.observations).float()
        return torch.cat([observed, action, reward.float()[:, None], done.float()[:, None]], dim=1)

    def forward(self, inputs: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``inputs`` ``[tasks, steps, features]`` -> logits, values ``[tasks, steps]``, the last hidden state."""
        out, hidden = self.gru(inputs, hidden)
        return self.logits(out), self.value(out).squeeze(-1), hidden


@dataclass
class Rollout:
    inputs: Tensor  # [tasks, steps, features]
    actions: Tensor  # [tasks, steps]
    log_probs: Tensor
    values: Tensor
    rewards: Tensor

    @property
    def totals(self) -> Tensor:
        return self.rewards.sum(1)


def rollout(
    policy: RL2Policy, trials: Trials, parameters: object, generator: torch.Generator | None, greedy: bool = False
) -> Rollout:
    """Play one trial per task with the policy (sampling actions, or their argmax with ``greedy``)."""
    state = trials.start(parameters)  # type: ignore[arg-type]
    tasks = len(state)
    previous = torch.full((tasks,), -1, dtype=torch.long)
    reward, done = torch.zeros(tasks, dtype=torch.float64), torch.zeros(tasks, dtype=torch.float64)
    hidden, steps = None, []
    with torch.no_grad():
        for step in range(trials.length):
            x = policy.inputs(state, previous, reward, done)
            logits, value, hidden = policy(x[:, None], hidden)
            distribution = torch.distributions.Categorical(logits=logits[:, 0])
            if greedy:
                action = logits[:, 0].argmax(-1)
            else:
                action = torch.multinomial(distribution.probs, 1, generator=generator)[:, 0]
            following, reward, done = trials.step(parameters, state, action, step, generator)  # type: ignore[arg-type]
            if not torch.isfinite(reward).all():
                raise TaskError(f"a reward is not finite at step {step}")
            steps.append((x, action, distribution.log_prob(action), value[:, 0], reward))
            state, previous = following, action
    inputs, actions, log_probs, values, rewards = (torch.stack(parts, 1) for parts in zip(*steps))
    return Rollout(inputs, actions, log_probs, values, rewards.float())


@dataclass(frozen=True)
class PPOConfig:
    discount: float = 0.99
    gae_lambda: float = 0.3  # the value RL² used for bandits
    clip: float = 0.2
    epochs: int = 4
    minibatches: int = 4
    learning_rate: float = 1e-3
    entropy: float = 0.01
    value_weight: float = 0.5
    # the value head learns returns divided by this: long trials' returns reach tens, and their squared error
    # would otherwise swamp the policy gradient in the shared GRU and its clipped gradient norm
    value_scale: float = 1.0


def advantages(rewards: Tensor, values: Tensor, discount: float, gae_lambda: float) -> tuple[Tensor, Tensor]:
    """GAE over a whole trial (it ends after its last step): advantages and value targets ``[tasks, steps]``."""
    following = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    deltas = rewards + discount * following - values
    out = torch.zeros_like(rewards)
    running = torch.zeros(len(rewards))
    for t in reversed(range(rewards.shape[1])):
        running = deltas[:, t] + discount * gae_lambda * running
        out[:, t] = running
    return out, out + values


def ppo_update(policy: RL2Policy, optimiser: torch.optim.Optimizer, batch: Rollout, config: PPOConfig) -> float:
    """PPO's clipped objective over whole trials (the GRU reruns each trial from its start)."""
    rewards = batch.rewards / config.value_scale
    advantage, target = advantages(rewards, batch.values, config.discount, config.gae_lambda)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    tasks = len(batch.actions)
    last = 0.0
    for _ in range(config.epochs):
        for rows in torch.randperm(tasks).chunk(config.minibatches):
            logits, values, _ = policy(batch.inputs[rows])
            distribution = torch.distributions.Categorical(logits=logits)
            ratio = (distribution.log_prob(batch.actions[rows]) - batch.log_probs[rows]).exp()
            clipped = ratio.clamp(1 - config.clip, 1 + config.clip)
            policy_loss = -torch.min(ratio * advantage[rows], clipped * advantage[rows]).mean()
            value_loss = (values - target[rows]).pow(2).mean()
            loss = policy_loss + config.value_weight * value_loss - config.entropy * distribution.entropy().mean()
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optimiser.step()
            last = float(loss.detach())
    return last
