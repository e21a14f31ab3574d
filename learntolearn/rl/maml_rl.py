"""MAML for reinforcement learning (Finn, Abbeel & Levine 2017, Section 5.3 and Appendix A.2).

A Gaussian MLP policy (ReLU hidden layers, a learned state-independent log standard deviation) adapts to a
task by ``inner_steps`` REINFORCE steps on ``rollouts`` episodes sampled in that task, with advantages from
GAE over a linear feature baseline fitted to the task's own returns (Duan et al. 2016, "Benchmarking deep
RL"). The meta-objective is the policy-gradient surrogate of the adapted policy on fresh episodes, averaged
over the meta-batch, and the outer step is TRPO (Schulman et al. 2015): conjugate gradient on
Fisher-vector products of the mean KL divergence between the adapted policies before and after the step,
then a backtracking line search that keeps the KL under ``max_kl`` and the surrogate improving. Both the
surrogate and the KL differentiate through the inner step (second order) unless ``first_order``.

The inner loop is :func:`~learntolearn.algorithms.inner.sgd_inner_loop` (``torch.func.grad``), vmapped over
the tasks of the meta-batch; episodes of every task are simulated together as one tensor.

Data parallelism: with a :class:`Shard`, a process simulates and adapts only its share of the meta-batch. Every
process draws the same task parameters and the full meta-batch's action noise from the same generator and
keeps its rows, so the episodes are those of one process; the surrogate and KL are sums of per-task terms
divided by the whole meta-batch, and ``reduce`` (an all-reduce) sums gradients, Fisher-vector products and
line-search values over processes, so every process takes the same TRPO step as one process would.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from learntolearn.algorithms.inner import Params, sgd_inner_loop
from learntolearn.errors import TaskError
from learntolearn.rl.tasks import PointNavigation, check_finite

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Shard:
    """Tasks ``start`` to ``stop`` of a meta-batch of ``total``: one process's share."""

    start: int
    stop: int
    total: int

    @staticmethod
    def whole(tasks: int) -> Shard:
        return Shard(0, tasks, tasks)


Reduce = Callable[[Tensor], Tensor]


def no_reduce(value: Tensor) -> Tensor:
    return value


class Simulator(Protocol):
    """Episodes of many tasks at once: :class:`~learntolearn.rl.tasks.PointNavigation` (tensors) or
    :class:`~learntolearn.rl.gym_tasks.VectorTasks` (gymnasium vector environments)."""

    @property
    def horizon(self) -> int: ...

    def reset(
        self, tasks: Tensor, episodes: int, generator: torch.Generator | None = None, first_task: int = 0
    ) -> Tensor: ...

    def step(self, tasks: Tensor, observations: Tensor, actions: Tensor, step: int) -> tuple[Tensor, Tensor]: ...

    def reached(self, tasks: Tensor, observations: Tensor) -> Tensor: ...


def init_policy(observations: int, actions: int, hidden: tuple[int, ...], generator: torch.Generator) -> Params:
    """Parameters of a Gaussian MLP policy, initialised as ``nn.Linear`` does, with standard deviation one."""
    sizes, params = (observations, *hidden, actions), {}
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1 / math.sqrt(fan_in)
        params[f"layer{layer}.weight"] = (2 * torch.rand(fan_out, fan_in, generator=generator) - 1) * bound
        params[f"layer{layer}.bias"] = (2 * torch.rand(fan_out, generator=generator) - 1) * bound
    params["log_std"] = torch.zeros(actions)
    return params


def policy_mean(params: Params, observations: Tensor) -> Tensor:
    """Mean action for ``[..., n, observations]``; parameters may carry one leading task dimension."""
    layers = (len(params) - 1) // 2
    x = observations
    expected = params["layer0.weight"].shape[-1]
    if x.shape[-1] != expected:
        raise TaskError(f"the policy reads {expected} numbers per observation, the task gives {x.shape[-1]}")
    for layer in range(layers):
        weight, bias = params[f"layer{layer}.weight"], params[f"layer{layer}.bias"]
        x = x @ weight.transpose(-1, -2) + (bias if bias.dim() == 1 else bias[:, None])
        if layer < layers - 1:
            x = torch.relu(x)
    return x


def log_std_of(params: Params, like: Tensor) -> Tensor:
    log_std = params["log_std"]
    return (log_std if log_std.dim() == 1 else log_std[:, None]).expand_as(like)


def log_prob(params: Params, observations: Tensor, actions: Tensor) -> Tensor:
    """Log density of ``actions`` under the policy, summed over action dimensions."""
    mean = policy_mean(params, observations)
    if actions.shape != mean.shape:
        raise TaskError(f"the policy acts with {mean.shape[-1]} numbers, the task takes {actions.shape[-1]}")
    log_std = log_std_of(params, mean)
    return (-0.5 * ((actions - mean) / log_std.exp()).square() - log_std - LOG_SQRT_2PI).sum(-1)


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """KL(p || q) of diagonal Gaussians, summed over the last dimension."""
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q).square()) / (2 * var_q) - 0.5).sum(-1)


@dataclass
class Episodes:
    """``episodes`` episodes in each of ``tasks`` tasks; ``mask`` is one while an episode runs."""

    observations: Tensor  # [tasks, episodes, steps, observation size]
    actions: Tensor  # [tasks, episodes, steps, action size]
    rewards: Tensor  # [tasks, episodes, steps], zero after an episode ended
    mask: Tensor  # [tasks, episodes, steps]
    #: [tasks, episodes], one for a real episode: tasks of a step budget collect different numbers of episodes,
    #: and the rows after a task's last are all-zero padding (None: every row is an episode)
    counted: Tensor | None = None

    def weights(self) -> Tensor:
        """Each row's weight in a per-task average over episodes, ``[tasks, episodes]``."""
        counted = torch.ones(self.mask.shape[:2]) if self.counted is None else self.counted
        return counted / counted.sum(-1, keepdim=True)

    @property
    def returns(self) -> Tensor:
        """Average undiscounted return per task, ``[tasks]``."""
        return (self.rewards.sum(-1) * self.weights()).sum(-1)

    @property
    def ended_early(self) -> Tensor:
        """Share of each task's episodes that ended before the horizon (navigation: reached the goal), ``[tasks]``."""
        ended = (self.mask[..., 0] == 1) & (self.mask[..., -1] == 0)
        return (ended.float() * self.weights()).sum(-1)

    @property
    def count(self) -> Tensor:
        """Episodes per task, ``[tasks]``."""
        return (self.mask[..., 0] == 1).sum(-1)

    def flat(self) -> tuple[Tensor, Tensor, Tensor]:
        """Observations, actions and mask with episodes and steps merged, ``[tasks, n, ...]`` (laid out as
        :meth:`steps`)."""
        return self.steps(self.observations), self.steps(self.actions), self.steps(self.mask)

    def steps(self, values: Tensor) -> Tensor:
        """``values`` per step, ``[tasks, episodes, steps, ...]``, with episodes and steps merged. With padding
        rows (``counted``) each task's steps taken come first and the rest is cut to the longest task's count: a
        task of many short episodes would otherwise pad every task to its number of episodes times the horizon,
        in every policy pass of the meta-gradient."""
        merged = values.flatten(1, 2)
        if self.counted is None:
            return merged
        mask = self.mask.flatten(1)
        order = torch.sort((mask == 0).to(torch.uint8), dim=1, stable=True).indices[:, : int(mask.sum(1).max())]
        index = order.reshape(*order.shape, *[1] * (merged.dim() - 2)).expand(*order.shape, *merged.shape[2:])
        return merged.gather(1, index)


def sample_episodes(
    params: Params,
    env: Simulator,
    goals: Tensor,
    episodes: int,
    generator: torch.Generator,
    shard: Shard | None = None,
) -> Episodes:
    """Run the policy (one set of parameters, or one per task) for ``episodes`` episodes in every task of
    ``goals``, which are the ``shard`` of a larger meta-batch if given (noise is drawn for the whole batch)."""
    shard = shard or Shard.whole(len(goals))
    positions = env.reset(goals, episodes, generator, shard.start)
    alive = torch.ones(positions.shape[:2])
    observations, actions, rewards, masks = [], [], [], []
    with torch.no_grad():
        for step in range(env.horizon):
            mean = policy_mean(params, positions)
            noise = torch.randn((shard.total, *mean.shape[1:]), generator=generator)[shard.start : shard.stop]
            action = mean + log_std_of(params, mean).exp() * noise
            following, reward = env.step(goals, positions, action, step)
            check_finite("a reward", reward, step, goals)
            observations.append(positions)
            actions.append(action)
            rewards.append(reward * alive)
            masks.append(alive)
            alive = alive * ~env.reached(goals, following)
            positions = following
    return Episodes(*(torch.stack(parts, dim=2) for parts in (observations, actions, rewards, masks)))


def sample_step_budget(
    params: Params, env: Simulator, goals: Tensor, budget: int, generator: torch.Generator, slots: int | None = None
) -> Episodes:
    """Episodes as rllab's vectorised sampler collects them in the MAML authors' code: ``slots`` episodes per
    task (default ``budget // horizon``, at least one) run in lockstep, each slot starting a new episode from the
    reset state when its episode ends, until the task's completed episodes hold at least ``budget`` steps; the
    episodes still running then are dropped. Where episodes can end early (navigation: at the goal), short
    episodes make up more of the sample than in a fixed number of episodes. Their test script samples each
    adaptation step with a budget of 4,000 steps; their training sampler runs one slot per task."""
    if not isinstance(env, PointNavigation):
        raise TaskError(
            "a step budget needs episodes that can end early and restart on their own (the navigation tasks); "
            "MuJoCo episodes always run to the horizon, so use a number of episodes instead"
        )
    tasks, horizon = len(goals), env.horizon
    slots = slots or max(1, budget // horizon)
    start = env.reset(goals, slots)
    positions, age = start.clone(), torch.zeros(tasks, slots, dtype=torch.long)
    size = positions.shape[-1]
    buffers = [torch.zeros(tasks, slots, horizon, size), torch.zeros(tasks, slots, horizon, size)]
    rewards = torch.zeros(tasks, slots, horizon)
    collected: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] = []  # task, observations, actions, rewards, length
    steps_done = torch.zeros(tasks, dtype=torch.long)
    rows, slot_index = torch.arange(tasks)[:, None].expand(tasks, slots), torch.arange(slots).expand(tasks, slots)
    step = 0
    with torch.no_grad():
        while bool((steps_done < budget).any()):
            mean = policy_mean(params, positions)
            action = mean + log_std_of(params, mean).exp() * torch.randn(mean.shape, generator=generator)
            following, reward = env.step(goals, positions, action, step)
            check_finite("a reward", reward, step, goals)
            buffers[0][rows, slot_index, age] = positions.float()
            buffers[1][rows, slot_index, age] = action.float()
            rewards[rows, slot_index, age] = reward.float()
            age += 1
            ended = env.reached(goals, following) | (age == horizon)
            keep = ended & (steps_done < budget)[:, None]
            if keep.any():
                task, slot = keep.nonzero(as_tuple=True)
                lengths = age[task, slot]
                collected.append(
                    (
                        task,
                        buffers[0][task, slot].clone(),
                        buffers[1][task, slot].clone(),
                        rewards[task, slot].clone(),
                        lengths,
                    )
                )
                steps_done += torch.bincount(task, weights=lengths.float(), minlength=tasks).long()
            for buffer in (*buffers, rewards):
                buffer[ended] = 0
            positions = torch.where(ended[..., None], start, following)
            age = torch.where(ended, 0, age)
            step += 1
    task = torch.cat([part[0] for part in collected])
    order = torch.sort(task, stable=True).indices
    task = task[order]
    observations, actions, episode_rewards, lengths = (
        torch.cat([part[i] for part in collected])[order] for i in range(1, 5)
    )
    counts = torch.bincount(task, minlength=tasks)
    position = torch.arange(len(task)) - (torch.cumsum(counts, 0) - counts)[task]
    shape = (tasks, int(counts.max()), horizon)
    mask = torch.zeros(shape)
    mask[task, position] = (torch.arange(horizon) < lengths[:, None]).float()
    padded = [torch.zeros(*shape, size), torch.zeros(*shape, size), torch.zeros(shape), torch.zeros(shape[:2])]
    for out, values in zip(padded, (observations, actions, episode_rewards, torch.ones(len(task)))):
        out[task, position] = values
    return Episodes(padded[0], padded[1], padded[2], mask, counted=padded[3])


def discounted_returns(rewards: Tensor, discount: float) -> Tensor:
    """Returns to go along the last dimension."""
    out, running = torch.zeros_like(rewards), torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + discount * running
        out[..., t] = running
    return out


def baseline_features(episodes: Episodes) -> Tensor:
    """Duan et al.'s linear-baseline features: observation, its square, time, time squared and cubed, one."""
    obs = episodes.observations.clamp(-10, 10)
    steps = episodes.mask.shape[-1]
    time = (torch.arange(steps, dtype=obs.dtype) / 100).expand(episodes.mask.shape)[..., None]
    features = torch.cat([obs, obs.square(), time, time.square(), time.pow(3), torch.ones_like(time)], dim=-1)
    return features * episodes.mask[..., None]


def linear_baseline(episodes: Episodes, returns: Tensor, regulariser: float = 1e-5) -> Tensor:
    """Values from a ridge regression of the returns on :func:`baseline_features`, fitted per task."""
    features = baseline_features(episodes).to(torch.float64)
    x = episodes.steps(features)
    y = episodes.steps((returns * episodes.mask).to(torch.float64))[..., None]
    gram, target = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y
    eye = torch.eye(x.shape[-1], dtype=torch.float64)
    for _ in range(5):  # raise the ridge until the system is well posed, as Duan et al.'s baseline does
        weights, info = torch.linalg.solve_ex(gram + regulariser * eye, target)
        if not info.any() and torch.isfinite(weights).all():
            break
        regulariser *= 10
    return (features @ weights[:, None]).squeeze(-1).to(returns.dtype) * episodes.mask


def gae(rewards: Tensor, values: Tensor, mask: Tensor, discount: float, gae_lambda: float) -> Tensor:
    """Generalised advantage estimates along the last dimension (episodes end after their last step)."""
    values = values * mask
    following = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], dim=-1)
    deltas = (rewards + discount * following - values) * mask
    return discounted_returns(deltas, discount * gae_lambda) * mask


def normalised_advantages(episodes: Episodes, discount: float, gae_lambda: float) -> Tensor:
    """GAE advantages over the linear baseline, standardised per task over the steps taken, ``[tasks, n]`` (laid
    out as :meth:`Episodes.steps`)."""
    values = linear_baseline(episodes, discounted_returns(episodes.rewards, discount))
    advantages = episodes.steps(gae(episodes.rewards, values, episodes.mask, discount, gae_lambda))
    mask = episodes.steps(episodes.mask)
    count = mask.sum(1, keepdim=True)
    mean = (advantages * mask).sum(1, keepdim=True) / count
    std = (((advantages - mean) * mask).square().sum(1, keepdim=True) / count).sqrt()
    return (advantages - mean) / (std + 1e-8) * mask


def reinforce_loss(params: Params, observations: Tensor, actions: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Minus the REINFORCE surrogate, ``-mean(log pi(a|s) * A)`` over the steps taken (one task)."""
    return -(log_prob(params, observations, actions) * advantages * mask).sum() / mask.sum()


def adapt(
    params: Params,
    episodes: Episodes,
    advantages: Tensor,
    lr: float,
    steps: int = 1,
    *,
    per_task: bool = False,
    first_order: bool = False,
) -> Params:
    """Per-task parameters after ``steps`` REINFORCE steps on each task's episodes (``per_task`` when
    ``params`` already carry a task dimension)."""
    observations, actions, mask = episodes.flat()

    def one_task(start: Params, obs: Tensor, act: Tensor, adv: Tensor, valid: Tensor) -> Params:
        return sgd_inner_loop(
            lambda p: reinforce_loss(p, obs, act, adv, valid),
            start,
            steps,
            lr,
            first_order=first_order,
            check_finite=False,
        )

    adapted = torch.func.vmap(one_task, in_dims=(0 if per_task else None, 0, 0, 0, 0))(
        params, observations, actions, advantages, mask
    )
    for name, value in adapted.items():
        if not torch.isfinite(value).all():
            task = int((~torch.isfinite(value)).flatten(1).any(1).nonzero()[0, 0])
            raise FloatingPointError(
                f"adapted parameter {name} is not finite for task {task}; lower the inner learning rate"
            )
    return adapted


Objective = Callable[[Params], tuple[Tensor, Tensor]]


def flat(tensors: tuple[Tensor, ...] | list[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def conjugate_gradient(product: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10) -> Tensor:
    """Approximately solve ``A x = b`` for symmetric positive definite ``A`` given ``x -> A x``."""
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r.dot(r)
    for _ in range(iterations):
        ap = product(p)
        alpha = rr / p.dot(ap)
        x, r = x + alpha * p, r - alpha * ap
        new_rr = r.dot(r)
        if new_rr < 1e-10:
            break
        p, rr = r + new_rr / rr * p, new_rr
    return x


@dataclass(frozen=True)
class TRPOStep:
    loss_before: float
    loss_after: float
    kl: float
    accepted: bool
    backtracks: int


def trpo_step(
    params: Params,
    objective: Objective,
    max_kl: float,
    cg_iterations: int = 10,
    damping: float = 1e-5,
    line_search_steps: int = 15,
    backtrack: float = 0.8,
    reduce: Reduce = no_reduce,
) -> TRPOStep:
    """One TRPO update of ``params`` (leaf tensors, changed in place). ``objective(p)`` returns the loss to
    lower and the mean KL from the current policy to ``p``'s (zero, with the Fisher as Hessian, at ``params``),
    or this process's terms of them, which ``reduce`` sums over processes."""
    names = list(params)
    leaves = [params[n] for n in names]
    loss, kl = objective(params)
    gradient = reduce(flat(torch.autograd.grad(loss, leaves, retain_graph=True)))
    kl_gradient = flat(torch.autograd.grad(kl, leaves, create_graph=True))

    def fisher_product(vector: Tensor) -> Tensor:
        product = torch.autograd.grad(kl_gradient.dot(vector), leaves, retain_graph=True)
        return reduce(flat(product)) + damping * vector

    direction = conjugate_gradient(fisher_product, -gradient, cg_iterations)
    curvature = direction.dot(fisher_product(direction))
    full_step = direction * torch.sqrt(2 * max_kl / curvature.clamp_min(1e-12))
    before = [leaf.detach().clone() for leaf in leaves]
    loss_before = float(reduce(loss.detach().reshape(1)))
    with torch.no_grad():
        for attempt in range(line_search_steps):
            offset = 0
            for leaf, start in zip(leaves, before):
                size = leaf.numel()
                leaf.copy_(start + backtrack**attempt * full_step[offset : offset + size].view_as(leaf))
                offset += size
            new_loss, new_kl = reduce(torch.stack(objective(params)))
            if float(new_loss) < loss_before and float(new_kl) <= max_kl:
                return TRPOStep(loss_before, float(new_loss), float(new_kl), True, attempt)
        for leaf, start in zip(leaves, before):
            leaf.copy_(start)
    return TRPOStep(loss_before, loss_before, 0.0, False, line_search_steps)


def meta_objective(
    params: Params,
    train: Episodes,
    valid: Episodes,
    config: MAMLRLSettings,
    total_tasks: int | None = None,
) -> Objective:
    """The surrogate loss and KL of the adapted policies on ``valid`` as functions of the initial parameters:
    sums over these tasks divided by ``total_tasks`` (the whole meta-batch; by default these tasks)."""
    train_advantages = normalised_advantages(train, config.discount, config.gae_lambda)
    valid_advantages = normalised_advantages(valid, config.discount, config.gae_lambda)
    observations, actions, mask = valid.flat()
    total = total_tasks or len(mask)

    def adapted(p: Params) -> Params:
        if config.inner_steps == 0:
            return p
        return adapt(p, train, train_advantages, config.inner_lr, config.inner_steps, first_order=config.first_order)

    with torch.no_grad():
        old = adapted({n: v.detach() for n, v in params.items()})
        old_mean = policy_mean(old, observations)
        old_log_std = log_std_of(old, old_mean)
        old_log_prob = log_prob(old, observations, actions)

    def objective(p: Params) -> tuple[Tensor, Tensor]:
        new = adapted(p)
        new_mean = policy_mean(new, observations)
        ratio = (log_prob(new, observations, actions) - old_log_prob).exp()

        def per_task(values: Tensor) -> Tensor:
            return ((values * mask).sum(1) / mask.sum(1)).sum() / total

        kl = gaussian_kl(old_mean, old_log_std, new_mean, log_std_of(new, new_mean))
        return -per_task(ratio * valid_advantages), per_task(kl)

    return objective


@dataclass(frozen=True)
class MAMLRLSettings:
    """What one meta-iteration needs (the run config extends it with sizes, budget and seed)."""

    inner_lr: float = 0.1
    inner_steps: int = 1  # 0 trains one policy on all tasks (the paper's "pretrained" baseline)
    first_order: bool = False
    discount: float = 0.99
    gae_lambda: float = 1.0
    max_kl: float = 0.01
    cg_iterations: int = 10
    cg_damping: float = 1e-5
    line_search_steps: int = 15
    backtrack: float = 0.8
    #: sample each task's episodes one after another until they hold ``rollouts`` x horizon steps, as the MAML
    #: authors' training sampler does (:func:`sample_step_budget` with one slot), instead of exactly ``rollouts``
    fill_step_budget: bool = False


def meta_iteration(
    params: Params,
    env: Simulator,
    goals: Tensor,
    rollouts: int,
    config: MAMLRLSettings,
    generator: torch.Generator,
    shard: Shard | None = None,
    reduce: Reduce = no_reduce,
) -> tuple[TRPOStep, Tensor, Tensor]:
    """Sample, adapt, sample again and take one TRPO step on the meta-batch ``goals`` (this process's
    ``shard`` of it); returns the step and the shard's returns per task before and after adapting."""
    shard = shard or Shard.whole(len(goals))
    mine = goals[shard.start : shard.stop]

    def sample(policy: Params) -> Episodes:
        if not config.fill_step_budget:
            return sample_episodes(policy, env, mine, rollouts, generator, shard)
        if shard.total != len(mine):
            raise TaskError("fill_step_budget samples the whole meta-batch in one process; train without --nproc")
        return sample_step_budget(policy, env, mine, rollouts * env.horizon, generator, slots=1)

    train = sample(params)
    if config.inner_steps == 0:
        valid = train
    else:
        advantages = normalised_advantages(train, config.discount, config.gae_lambda)
        with torch.no_grad():
            fast = adapt(
                {n: v.detach() for n, v in params.items()}, train, advantages, config.inner_lr, config.inner_steps
            )
        valid = sample(fast)
    step = trpo_step(
        params,
        meta_objective(params, train, valid, config, shard.total),
        config.max_kl,
        config.cg_iterations,
        config.cg_damping,
        config.line_search_steps,
        config.backtrack,
        reduce,
    )
    return step, train.returns, valid.returns


def returns_while_adapting(
    params: Params,
    env: Simulator,
    goals: Tensor,
    rollouts: int,
    steps: int,
    config: MAMLRLSettings,
    generator: torch.Generator,
    later_step_scale: float = 0.5,
    step_budget: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Average return per task after 0..``steps`` adaptation steps, each on the episodes of the step before,
    ``[steps + 1, tasks]``, the share of those episodes that ended early and their number. The first step has the
    inner step size, later ones ``later_step_scale`` times it (the MAML authors' evaluation halves it after the
    first step). With ``step_budget``, each step samples as :func:`sample_step_budget` instead of ``rollouts``
    episodes per task."""
    current, per_task, rows, ended, counts = {n: v.detach() for n, v in params.items()}, False, [], [], []
    for step in range(steps + 1):
        if step_budget is None:
            episodes = sample_episodes(current, env, goals, rollouts, generator)
        else:
            episodes = sample_step_budget(current, env, goals, step_budget, generator)
        rows.append(episodes.returns)
        ended.append(episodes.ended_early)
        counts.append(episodes.count)
        if step < steps:
            advantages = normalised_advantages(episodes, config.discount, config.gae_lambda)
            lr = config.inner_lr * (1.0 if step == 0 else later_step_scale)
            with torch.no_grad():
                current = adapt(current, episodes, advantages, lr, 1, per_task=per_task)
            per_task = True
    return torch.stack(rows), torch.stack(ended), torch.stack(counts)
