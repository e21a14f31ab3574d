"""Meta-RL task distributions and the hand-designed bandit learners: simulators match their parameters,
bad parameters or actions name the task and step, learners rank as theory says, and runs are reproducible."""

import numpy as np
import pytest
import torch

from learntolearn.errors import TaskError
from learntolearn.rl.bandits import (
    STRATEGIES,
    epsilon_greedy,
    gittins,
    gittins_indices,
    greedy,
    play,
    posterior_mean_greedy,
    thompson,
    ucb1,
)
from learntolearn.rl.mdp_baselines import (
    LEARNERS,
    Posterior,
    greedy_policy,
    optimal_actions,
    psrl_policy,
    run_trials,
)
from learntolearn.rl.tasks import BernoulliBandits, MDPParameters, PointNavigation, TabularMDPs


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bandit_rewards_follow_each_tasks_arm_probabilities():
    bandits = BernoulliBandits(3)
    probabilities = torch.tensor([[0.1, 0.5, 0.9], [0.9, 0.0, 1.0]], dtype=torch.float64)
    arms = torch.tensor([[0, 1, 2] * 4000, [0, 1, 2] * 4000])
    rewards = bandits.pull(probabilities, arms, generator())
    means = rewards.reshape(2, -1, 3).mean(1)
    assert torch.allclose(means, probabilities, atol=0.02)
    assert bandits.sample(1000, generator()).mean().item() == pytest.approx(0.5, abs=0.02)


def test_learners_rank_as_theory_says_on_two_armed_bandits():
    bandits = BernoulliBandits(2)
    probabilities = torch.tensor([[0.2, 0.8]] * 200 + [[0.8, 0.2]] * 200, dtype=torch.float64)
    totals = {
        name: play(make(), bandits, probabilities, 100, generator(1)).mean().item() for name, make in STRATEGIES.items()
    }
    assert totals["random"] == pytest.approx(50, abs=2)
    assert totals["oracle (best arm known)"] == pytest.approx(80, abs=1.5)
    for learner in ("UCB1", "Thompson sampling", "epsilon-greedy (0.1)", "epsilon-greedy 0.1 (posterior mean)"):
        assert 65 < totals[learner] <= totals["oracle (best arm known)"] + 1, learner


def test_greedy_on_posterior_means_keeps_an_arm_that_paid_and_leaves_one_that_failed_for_an_untried_one():
    pulls = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    successes = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    probabilities = torch.full((2, 3), 0.5, dtype=torch.float64)
    chosen = torch.stack([posterior_mean_greedy(pulls, successes, 2, probabilities, generator(s)) for s in range(50)])
    assert (chosen[:, 0] == 0).all()  # paid once: mean 2/3 beats an untried arm's 1/2
    assert set(chosen[:, 1].tolist()) == {1, 2}  # failed once (1/3): one of the untried arms, at random
    with pytest.raises(TaskError, match="epsilon"):
        epsilon_greedy(-0.1, posterior_mean_greedy)


def test_greedy_and_ucb_try_every_arm_before_repeating_one():
    bandits = BernoulliBandits(4)
    probabilities = torch.full((3, 4), 1.0, dtype=torch.float64)  # every pull succeeds: a greedy learner would stick
    for strategy in (greedy, ucb1()):
        seen = []

        def recording(pulls, successes, step, p, g, strategy=strategy, seen=seen):
            arms = strategy(pulls, successes, step, p, g)
            seen.append(arms)
            return arms

        play(recording, bandits, probabilities, 4, generator())
        assert torch.equal(torch.stack(seen, 1).sort(1).values, torch.arange(4).expand(3, 4))


def test_runs_repeat_exactly_from_the_same_seed():
    bandits = BernoulliBandits(5)
    probabilities = bandits.sample(50, generator(3))
    first = play(thompson, bandits, probabilities, 30, generator(4))
    assert torch.equal(first, play(thompson, bandits, probabilities, 30, generator(4)))
    assert not torch.equal(first, play(thompson, bandits, probabilities, 30, generator(5)))


def test_bad_bandit_input_names_the_task():
    bandits = BernoulliBandits(2)
    with pytest.raises(TaskError, match="task 1: arm probabilities must lie in"):
        play(greedy, bandits, torch.tensor([[0.1, 0.2], [0.3, 1.5]], dtype=torch.float64), 5)
    with pytest.raises(TaskError, match=r"must be \[tasks, 2\]"):
        play(greedy, bandits, torch.rand(3, 4, dtype=torch.float64), 5)
    with pytest.raises(TaskError, match="whole numbers in"):
        bandits.pull(torch.rand(1, 2, dtype=torch.float64), torch.tensor([2]))
    with pytest.raises(TaskError, match="at least two arms"):
        BernoulliBandits(1)


def test_mdp_steps_follow_transitions_and_reward_means():
    mdps = TabularMDPs(states=3, actions=2, horizon=10)
    parameters = mdps.sample(2, generator())
    mdps.check(parameters)
    assert torch.allclose(parameters.transitions.sum(-1), torch.ones(2, 3, 2, dtype=torch.float64))
    states = torch.full((2, 20000), 1)
    actions = torch.ones(2, 20000, dtype=torch.long)
    following, rewards = mdps.step(parameters, states, actions, generator(1))
    frequencies = torch.stack([torch.bincount(f, minlength=3) for f in following]).double() / 20000
    assert torch.allclose(frequencies, parameters.transitions[:, 1, 1], atol=0.015)
    assert torch.allclose(rewards.mean(1), parameters.reward_means[:, 1, 1], atol=0.03)
    assert torch.equal(mdps.reset(parameters, 4), torch.zeros(2, 4, dtype=torch.long))


def test_invalid_mdp_parameters_name_the_task():
    mdps = TabularMDPs(states=2, actions=1)
    good = mdps.sample(3, generator())
    broken = good.transitions.clone()
    broken[2, 0, 0] = torch.tensor([0.7, 0.7])
    with pytest.raises(TaskError, match="task 2: every transition row"):
        mdps.check(MDPParameters(broken, good.reward_means))
    means = good.reward_means.clone()
    means[1, 0, 0] = float("nan")
    with pytest.raises(TaskError, match="not finite for task 1"):
        mdps.check(MDPParameters(good.transitions, means))


def test_point_navigation_clips_actions_and_rewards_minus_the_distance():
    navigation = PointNavigation()
    goals = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    positions = navigation.reset(goals)
    moved, reward = navigation.step(goals, positions, torch.tensor([[[1.0, -0.05]]], dtype=torch.float64))
    assert torch.allclose(moved, torch.tensor([[[0.1, -0.05]]], dtype=torch.float64))
    assert reward.item() == pytest.approx(-((0.2**2 + 0.35**2) ** 0.5))
    assert navigation.sample(2000, generator()).abs().max() <= 0.5
    with pytest.raises(TaskError, match=r"not finite for task 0 \(task parameter \[0.3, -0.4\]\) at step 7"):
        navigation.step(goals, positions, torch.tensor([[[float("inf"), 0.0]]], dtype=torch.float64), step=7)


def test_point_navigation_with_normalised_actions_scales_the_clipped_action_by_the_largest_step():
    navigation = PointNavigation(normalised_actions=True)
    goals = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    actions = torch.tensor([[[0.5, -3.0], [-1.0, 0.2]]], dtype=torch.float64)
    moved, _ = navigation.step(goals, navigation.reset(goals, episodes=2), actions)
    assert torch.allclose(moved, torch.tensor([[[0.05, -0.1], [-0.1, 0.02]]], dtype=torch.float64))


def test_dynamic_programming_equals_the_best_of_every_deterministic_policy():
    import itertools

    mdps = TabularMDPs(states=2, actions=2, horizon=2)
    parameters = mdps.sample(3, generator(7))
    best, values = optimal_actions(parameters.transitions, parameters.reward_means, horizon=2)
    p, r = parameters.transitions, parameters.reward_means
    for task in range(3):
        returns = []
        for first, second_by_state in itertools.product(range(2), itertools.product(range(2), repeat=2)):
            after = p[task, 0, first]
            value = r[task, 0, first] + sum(after[s] * r[task, s, second_by_state[s]] for s in range(2))
            returns.append(float(value))
        assert values[task, 0].item() == pytest.approx(max(returns))
    assert best.shape == (3, 2, 2)


def test_psrl_learns_within_a_trial_and_stays_below_the_oracle():
    mdps = TabularMDPs()
    parameters = mdps.sample(200, generator(2))
    totals = {
        name: run_trials(make(mdps), mdps, parameters, 10, generator(3)).mean().item()
        for name, make in LEARNERS.items()
    }
    assert totals["random"] == pytest.approx(100, abs=6)  # reward means average 1 over 100 steps
    assert totals["random"] + 15 < totals["PSRL"] < totals["oracle (MDP known)"] - 30
    for name in ("greedy (untried: 0)", "epsilon-greedy 0.1 (untried: 0)"):
        assert totals["random"] + 15 < totals[name] < totals["greedy (untried: prior mean 1)"] - 5
    assert totals["greedy (untried: prior mean 1)"] < totals["oracle (MDP known)"] - 30
    again = run_trials(psrl_policy(mdps), mdps, parameters, 10, generator(3)).mean().item()
    assert again == totals["PSRL"]
    with pytest.raises(TaskError, match="at least one episode"):
        run_trials(psrl_policy(mdps), mdps, parameters, 0)


def test_greedy_exploits_the_best_action_seen_and_tries_unseen_ones_worth_more():
    mdps = TabularMDPs(states=2, actions=3, horizon=1)
    parameters = mdps.sample(2, generator())
    posterior = Posterior(2, mdps)
    state, following = torch.tensor([0, 0]), torch.tensor([1, 1])
    # task 0 saw action 1 pay 3 (above the prior mean 1 of unseen actions); task 1 saw actions 0 and 1 pay less
    posterior.update(state, torch.tensor([1, 0]), following, torch.tensor([3.0, 0.2], dtype=torch.float64))
    posterior.update(state, torch.tensor([1, 1]), following, torch.tensor([3.0, 0.5], dtype=torch.float64))
    for seed in range(20):
        plan = greedy_policy(mdps)(parameters, posterior, generator(seed))
        assert plan[0, 0, 0].item() == 1 and plan[1, 0, 0].item() == 2
        unseen_worth_nothing = greedy_policy(mdps, unseen_mean=0.0)(parameters, posterior, generator(seed))
        assert unseen_worth_nothing[:, 0, 0].tolist() == [1, 1]
    transitions, means = posterior.estimate()
    assert means[1, 0, :2].tolist() == pytest.approx([0.2, 0.5], abs=1e-3) and means[1, 0, 2].item() == 1.0
    assert transitions[1, 0, 0].tolist() == pytest.approx([0.0, 1.0], abs=1e-3)
    assert transitions[1, 0, 2].tolist() == pytest.approx([0.5, 0.5])
    explored = torch.stack([greedy_policy(mdps, 1.0)(parameters, posterior, generator(seed)) for seed in range(300)])
    assert torch.bincount(explored[:, 0, 0, 0], minlength=3).min().item() > 70  # epsilon 1: uniform
    with pytest.raises(TaskError, match="between 0 and 1"):
        greedy_policy(mdps, 1.5)


def test_the_posterior_concentrates_on_what_was_seen():
    mdps = TabularMDPs(states=2, actions=1)
    posterior = Posterior(1, mdps)
    for _ in range(4000):
        posterior.update(
            torch.tensor([0]), torch.tensor([0]), torch.tensor([1]), torch.tensor([3.0], dtype=torch.float64)
        )
    transitions, means = posterior.sample(generator())
    assert transitions[0, 0, 0, 1].item() > 0.99 and means[0, 0, 0].item() == pytest.approx(3.0, abs=0.05)
    assert abs(means[0, 1, 0].item() - 1.0) < 4  # unseen: still the prior N(1, 1)


def test_gittins_indices_equal_gittins_tables():
    # Gittins' tables for a Bernoulli arm with a uniform prior (as reprinted in Christian & Griffiths 2016)
    table = gittins_indices(0.9, 10, depth=150)
    for (successes, failures), expected in {(0, 0): 0.7029, (1, 1): 0.6346, (2, 2): 0.6010, (9, 1): 0.8695}.items():
        assert table[successes, failures] == pytest.approx(expected, abs=1e-4)
    assert gittins_indices(0.99, 4)[0, 0] == pytest.approx(0.8699, abs=1e-4)
    myopic = gittins_indices(0.0, 5, depth=10)  # no future: the index is the posterior mean
    assert myopic[3, 1] == pytest.approx(4 / 6, abs=1e-9)
    assert (np.diff(table[:, 0]) > 0).all() and (
        np.diff(table[0, :]) < 0
    ).all()  # successes raise it, failures lower it


def test_the_gittins_learner_keeps_pulling_an_arm_that_pays():
    bandits = BernoulliBandits(2)
    probabilities = torch.tensor([[0.9, 0.1]] * 200, dtype=torch.float64)
    total = play(gittins(0.9), bandits, probabilities, 20, generator())
    assert total.mean() > 0.8 * 20 * 0.9
    with pytest.raises(TaskError, match="discount in \\[0, 1\\)"):
        gittins(1.0)
