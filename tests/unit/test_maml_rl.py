"""MAML-RL: the policy-gradient estimator against an exact gradient, GAE and the linear baseline by hand, TRPO's KL
limit, the second-order meta-gradient against finite differences, and errors naming the task and step."""

import math

import pytest
import torch

from learntolearn.errors import TaskError
from learntolearn.rl.maml_rl import (
    Episodes,
    MAMLRLSettings,
    Shard,
    adapt,
    conjugate_gradient,
    discounted_returns,
    gae,
    gaussian_kl,
    init_policy,
    linear_baseline,
    log_std_of,
    meta_iteration,
    meta_objective,
    normalised_advantages,
    policy_mean,
    reinforce_loss,
    returns_while_adapting,
    sample_episodes,
    sample_step_budget,
    trpo_step,
)
from learntolearn.rl.tasks import PointNavigation


def test_the_policy_gradient_estimator_matches_the_exact_gradient_of_a_one_step_task():
    # one step from the origin without clipping: the expected return is -E|mu + sigma z - goal|, which a fine
    # grid over z integrates exactly enough to differentiate; a linear policy's mean at the origin is its bias
    env = PointNavigation(horizon=1, max_action=100.0)
    goal = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    params = {
        "layer0.weight": torch.zeros(2, 2, dtype=torch.float64),
        "layer0.bias": torch.tensor([-0.1, 0.25], dtype=torch.float64),
        "log_std": torch.tensor([math.log(0.3), math.log(0.5)], dtype=torch.float64),
    }
    z = torch.linspace(-7, 7, 1401, dtype=torch.float64)
    za, zb = torch.meshgrid(z, z, indexing="ij")
    weights = torch.exp(-(za.square() + zb.square()) / 2)
    weights = weights / weights.sum()

    def expected_return(p):
        action = p["layer0.bias"] + p["log_std"].exp() * torch.stack([za, zb], -1)
        return -((action - goal[0]).norm(dim=-1) * weights).sum()

    exact = torch.func.grad(expected_return)(params)
    episodes = sample_episodes(params, env, goal, 200_000, torch.Generator().manual_seed(0))
    observations, actions, mask = episodes.flat()
    returns = episodes.rewards.reshape(1, -1)
    estimate = torch.func.grad(
        lambda p: -reinforce_loss(p, observations[0], actions[0], returns[0] - returns.mean(), mask[0])
    )(params)
    for name in ("layer0.bias", "log_std"):
        assert torch.allclose(estimate[name], exact[name], atol=0.01), (name, estimate[name], exact[name])
    assert estimate["layer0.weight"].abs().max() == 0  # the observation is the origin


def test_returns_and_gae_follow_a_hand_worked_episode():
    rewards = torch.tensor([[1.0, 2.0, 4.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert discounted_returns(rewards, 0.5).tolist() == [[3.0, 4.0, 4.0, 0.0]]
    values = torch.tensor([[1.0, 1.0, 2.0, 9.0]])  # the value after the end is masked away
    # lambda 1: returns minus values; lambda 0: one-step TD errors r + 0.5 v' - v
    assert gae(rewards, values, mask, 0.5, 1.0).tolist() == [[2.0, 3.0, 2.0, 0.0]]
    assert gae(rewards, values, mask, 0.5, 0.0).tolist() == [[0.5, 2.0, 2.0, 0.0]]


def test_the_linear_baseline_recovers_returns_linear_in_its_features():
    generator = torch.Generator().manual_seed(1)
    observations = torch.rand(2, 3, 10, 2, generator=generator)
    time = torch.arange(10) / 100
    returns = 3 * observations[..., 0] - observations[..., 1].square() + 2 * time + 1
    returns[1] *= -1  # each task has its own fit
    mask = torch.ones(2, 3, 10)
    mask[0, 0, 7:] = 0
    episodes = Episodes(observations, torch.zeros(2, 3, 10, 2), torch.zeros(2, 3, 10), mask)
    values = linear_baseline(episodes, returns)
    assert torch.allclose(values, returns * mask, atol=1e-3)


def test_conjugate_gradient_solves_a_positive_definite_system():
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    a = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=generator, dtype=torch.float64)
    assert torch.allclose(conjugate_gradient(lambda v: a @ v, b, iterations=20), torch.linalg.solve(a, b), atol=1e-8)


def navigation_batch(dtype=torch.float32, tasks=3, rollouts=4, horizon=15, inner_steps=1):
    env = PointNavigation(horizon=horizon)
    generator = torch.Generator().manual_seed(3)
    params = {n: v.to(dtype) for n, v in init_policy(2, 2, (16, 16), generator).items()}
    goals = env.sample(tasks, generator).to(dtype)
    config = MAMLRLSettings(inner_steps=inner_steps)
    train = sample_episodes(params, env, goals, rollouts, generator)
    fast = params if inner_steps == 0 else adapt(params, train, normalised_advantages(train, 0.99, 1.0), 0.1)
    valid = sample_episodes(fast, env, goals, rollouts, generator)
    return params, train, valid, config


@pytest.mark.parametrize("max_kl", [0.01, 1e-4])
@pytest.mark.parametrize("inner_steps", [1, 0])
def test_a_trpo_step_lowers_the_surrogate_within_the_kl_limit(max_kl, inner_steps):
    params, train, valid, config = navigation_batch(inner_steps=inner_steps)
    start = {n: v.clone() for n, v in params.items()}
    for value in params.values():
        value.requires_grad_(True)
    step = trpo_step(params, meta_objective(params, train, valid, config), max_kl)
    assert step.accepted and step.loss_after < step.loss_before and step.kl <= max_kl
    # the KL measured afresh between the adapted policies before and after the step
    observations, _, mask = valid.flat()

    def adapted(p):
        return p if inner_steps == 0 else adapt(p, train, normalised_advantages(train, 0.99, 1.0), 0.1)

    with torch.no_grad():
        old, new = adapted(start), adapted(params)
        old_mean, new_mean = policy_mean(old, observations), policy_mean(new, observations)
        kl = gaussian_kl(old_mean, log_std_of(old, old_mean), new_mean, log_std_of(new, new_mean))
        mean_kl = ((kl * mask).sum(1) / mask.sum(1)).mean()
    assert 0 < mean_kl <= max_kl * 1.001
    if (
        max_kl == 1e-4
    ):  # small steps: the quadratic model of the KL is accurate: the full step lands at the limit (taken, or once backtracked by 0.8)
        assert step.backtracks <= 1 and 0.5 * max_kl < mean_kl


def test_the_meta_gradient_through_the_inner_policy_gradient_step_equals_finite_differences():
    params, train, valid, config = navigation_batch(dtype=torch.float64)
    leaves = {n: v.clone().requires_grad_(True) for n, v in params.items()}
    objective = meta_objective(leaves, train, valid, config)
    loss, _ = objective(leaves)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    direction = {
        n: torch.randn(v.shape, generator=torch.Generator().manual_seed(4), dtype=v.dtype) for n, v in params.items()
    }
    analytic = sum((g * direction[n]).sum() for g, n in zip(grads, leaves))
    eps = 1e-6
    with torch.no_grad():
        plus = objective({n: v + eps * direction[n] for n, v in params.items()})[0]
        minus = objective({n: v - eps * direction[n] for n, v in params.items()})[0]
    numeric = (plus - minus) / (2 * eps)
    assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-9), (analytic, numeric)
    # first-order MAML drops terms that matter here
    first_order = meta_objective(leaves, train, valid, MAMLRLSettings(first_order=True))(leaves)[0]
    fo_grads = torch.autograd.grad(first_order, list(leaves.values()))
    fo = sum((g * direction[n]).sum() for g, n in zip(fo_grads, leaves))
    assert abs(float(fo - analytic)) > 1e-3 * abs(float(analytic))


def test_bad_policies_and_values_name_the_problem_and_the_step():
    env = PointNavigation(horizon=5)
    goals = env.sample(2, torch.Generator().manual_seed(0)).float()
    generator = torch.Generator().manual_seed(0)
    wrong = init_policy(3, 2, (8,), generator)
    with pytest.raises(TaskError, match="reads 3 numbers per observation, the task gives 2"):
        sample_episodes(wrong, env, goals, 2, generator)
    broken = init_policy(2, 2, (8,), generator)
    broken["layer1.bias"][0] = float("nan")
    with pytest.raises(TaskError, match=r"an action is not finite for task 0 \(task parameter \[.*\]\) at step 0"):
        sample_episodes(broken, env, goals, 2, generator)
    params = init_policy(2, 2, (8,), generator)
    episodes = sample_episodes(params, env, goals, 2, generator)
    observations, _, mask = episodes.flat()
    with pytest.raises(TaskError, match="acts with 2 numbers, the task takes 3"):
        reinforce_loss(params, observations[0], torch.zeros(len(mask[0]), 3), mask[0], mask[0])
    with pytest.raises(FloatingPointError, match="not finite for task"):
        adapt(params, episodes, normalised_advantages(episodes, 0.99, 1.0), 1e300)


def test_episodes_end_when_the_goal_is_reached():
    env = PointNavigation(horizon=6)
    goals = torch.tensor([[0.15, 0.0]])
    # a policy that always moves right by 0.1 (clipped) with negligible noise reaches the goal... then stops counting
    params = {
        "layer0.weight": torch.zeros(2, 2),
        "layer0.bias": torch.tensor([0.075, 0.0]),
        "log_std": torch.full((2,), -30.0),
    }
    episodes = sample_episodes(params, env, goals, 1, torch.Generator().manual_seed(0))
    assert episodes.mask[0, 0].tolist() == [1, 1, 0, 0, 0, 0]
    assert episodes.ended_early.tolist() == [1.0]
    assert torch.allclose(episodes.rewards[0, 0, :2], torch.tensor([-0.075, 0.0]), atol=1e-6)
    assert episodes.rewards[0, 0, 2:].abs().sum() == 0


def test_evaluation_takes_the_first_step_at_the_inner_size_and_later_ones_at_half_of_it():
    env, config = PointNavigation(horizon=8, normalised_actions=True), MAMLRLSettings(inner_lr=0.3)
    goals = PointNavigation().sample(3, torch.Generator().manual_seed(0)).float()
    params = init_policy(2, 2, (16,), torch.Generator().manual_seed(1))
    scored, ended, counts = returns_while_adapting(params, env, goals, 4, 2, config, torch.Generator().manual_seed(2))
    generator, current, expected, expected_ended = torch.Generator().manual_seed(2), params, [], []
    for step, lr in enumerate((0.3, 0.15, None)):
        episodes = sample_episodes(current, env, goals, 4, generator)
        expected.append(episodes.returns)
        expected_ended.append((episodes.mask.sum(-1) < 8).float().mean(-1))
        if lr is not None:
            advantages = normalised_advantages(episodes, config.discount, config.gae_lambda)
            current = adapt(current, episodes, advantages, lr, 1, per_task=step > 0)
    assert torch.equal(scored, torch.stack(expected)) and torch.equal(ended, torch.stack(expected_ended))
    assert counts.tolist() == [[4, 4, 4]] * 3
    same_size, _, _ = returns_while_adapting(
        params, env, goals, 4, 2, config, torch.Generator().manual_seed(2), later_step_scale=1.0
    )
    assert torch.equal(same_size[:2], scored[:2]) and not torch.equal(same_size[2], scored[2])


def rllab_vectorised_sampler(params, env, goals, budget, generator):
    """A per-task, per-slot loop over the same noise as the MAML authors' sampler: ``budget // horizon`` slots in
    lockstep, a new episode wherever one ends, stopping once the completed episodes hold ``budget`` steps."""
    tasks, slots = len(goals), max(1, budget // env.horizon)
    positions = torch.zeros(tasks, slots, 2)
    running = [[[] for _ in range(slots)] for _ in range(tasks)]
    done, collected, step = [0] * tasks, [[] for _ in range(tasks)], 0
    while min(done) < budget:
        mean = policy_mean(params, positions)
        actions = mean + log_std_of(params, mean).exp() * torch.randn(mean.shape, generator=generator)
        following, rewards = env.step(goals, positions, actions, step)
        reached = env.reached(goals, following)
        finished = []
        for task in range(tasks):
            for slot in range(slots):
                running[task][slot].append(float(rewards[task, slot]))
                if reached[task, slot] or len(running[task][slot]) == env.horizon:
                    finished.append((task, running[task][slot]))
                    running[task][slot] = []
                    following[task, slot] = 0.0
        collecting = [steps < budget for steps in done]  # checked once per step, as the sampler's while loop
        for task, episode in finished:
            if collecting[task]:
                collected[task].append(episode)
                done[task] += len(episode)
        positions, step = following, step + 1
    return collected


def test_a_step_budget_collects_the_episodes_of_the_authors_sampler():
    env = PointNavigation(horizon=6, goal_tolerance=0.15, normalised_actions=True)
    goals = torch.tensor([[0.1, 0.1], [0.45, -0.45], [-0.05, 0.12]])
    params = init_policy(2, 2, (8,), torch.Generator().manual_seed(3))
    episodes = sample_step_budget(params, env, goals, 20, torch.Generator().manual_seed(4))
    expected = rllab_vectorised_sampler(params, env, goals, 20, torch.Generator().manual_seed(4))
    assert episodes.count.tolist() == [len(task) for task in expected]
    for task, task_episodes in enumerate(expected):
        lengths = [len(episode) for episode in task_episodes]
        assert sum(lengths) >= 20
        assert episodes.mask[task].sum(-1).tolist()[: len(lengths)] == lengths
        sums = sorted(round(sum(episode), 4) for episode in task_episodes)
        assert sorted(round(float(r), 4) for r in episodes.rewards[task, : len(lengths)].sum(-1)) == sums
        assert episodes.returns[task].item() == pytest.approx(sum(sums) / len(sums), abs=1e-4)
        assert episodes.ended_early[task].item() == pytest.approx(sum(n < 6 for n in lengths) / len(lengths))
    assert episodes.mask[0, 0, 0] == 1 and episodes.count.max() > 3  # the goals near the start end episodes early
    assert episodes.counted is not None and episodes.counted.sum() == episodes.count.sum()


def test_padded_episodes_change_neither_the_adaptation_step_nor_the_returns():
    env = PointNavigation(horizon=5, normalised_actions=True)
    goals = PointNavigation().sample(2, torch.Generator().manual_seed(0)).float()
    params = init_policy(2, 2, (8,), torch.Generator().manual_seed(1))
    episodes = sample_episodes(params, env, goals, 3, torch.Generator().manual_seed(2))
    pad = [torch.cat([t, torch.zeros_like(t[:, :2])], dim=1) for t in (episodes.observations, episodes.actions)]
    padded = Episodes(
        *pad,
        torch.cat([episodes.rewards, torch.zeros_like(episodes.rewards[:, :2])], dim=1),
        torch.cat([episodes.mask, torch.zeros_like(episodes.mask[:, :2])], dim=1),
        torch.cat([torch.ones(2, 3), torch.zeros(2, 2)], dim=1),
    )
    assert torch.allclose(padded.returns, episodes.returns) and torch.equal(padded.count, episodes.count)
    # the policy passes see each task's steps taken, cut to the longest task's count, not the padding
    taken = episodes.mask.sum((1, 2))
    assert padded.flat()[2].shape == (2, int(taken.max())) and torch.equal(padded.flat()[2].sum(1), taken)
    steps = [adapt(params, e, normalised_advantages(e, 0.99, 1.0), 0.1) for e in (episodes, padded)]
    for name in params:
        assert torch.allclose(steps[0][name], steps[1][name], atol=1e-6)


def test_a_step_budget_refuses_simulators_whose_episodes_cannot_restart_alone():
    class Cheetahs:
        horizon = 200

    with pytest.raises(TaskError, match="step budget"):
        sample_step_budget({}, Cheetahs(), torch.zeros(1, 1), 400, torch.Generator())


def test_filling_a_step_budget_in_training_samples_one_episode_after_another_per_task():
    env = PointNavigation(horizon=6, goal_tolerance=0.15, normalised_actions=True)
    goals = torch.tensor([[0.1, 0.1], [0.45, -0.45]])
    params = {n: v.requires_grad_() for n, v in init_policy(2, 2, (8,), torch.Generator().manual_seed(3)).items()}
    config = MAMLRLSettings(first_order=True, fill_step_budget=True, cg_iterations=2)
    expected = sample_step_budget(params, env, goals, 18, torch.Generator().manual_seed(4), slots=1)
    _, before, _ = meta_iteration(params, env, goals, 3, config, torch.Generator().manual_seed(4))
    assert torch.equal(before, expected.returns)
    assert expected.count[0] > 3 and expected.count[1] == 3  # the goal near the start ends episodes early
    assert (expected.mask.sum((1, 2)) >= 18).all()
    nan_goals = torch.tensor([[0.1, 0.1], [float("nan"), 0.0]])
    with pytest.raises(
        TaskError, match=r"a reward is not finite for task 1 \(task parameter \[nan, 0\.0\]\) at step 0"
    ):
        sample_step_budget(params, env, nan_goals, 18, torch.Generator(), slots=1)
    with pytest.raises(TaskError, match="one process"):
        meta_iteration(params, env, goals[:1], 3, config, torch.Generator(), shard=Shard(0, 1, 2))
