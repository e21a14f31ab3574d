"""RL² learns to learn: a GRU policy meta-trained by PPO on 2-armed bandits earns more per 10-pull trial on new
bandits than random pulling, and its rollouts respect the trial structure."""

from dataclasses import replace

import pytest
import torch

from learntolearn.rl.rl2 import BanditTrials, MDPTrials, PPOConfig, RL2Policy, advantages, ppo_update, rollout
from learntolearn.rl.tasks import TabularMDPs


@pytest.mark.slow
def test_rl2_beats_random_pulling_on_new_two_armed_bandits():
    torch.manual_seed(0)
    trials = BanditTrials(arms=2, pulls=10)
    policy = RL2Policy(1, 2, hidden=64)
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    held_out = trials.sample(1000, torch.Generator().manual_seed(99))
    before = rollout(policy, trials, held_out, torch.Generator().manual_seed(5)).totals.mean().item()
    for _ in range(60):
        batch = rollout(policy, trials, trials.sample(128, generator), generator)
        ppo_update(policy, optimiser, batch, PPOConfig(learning_rate=3e-3))
    after = rollout(policy, trials, held_out, torch.Generator().manual_seed(5)).totals.mean().item()
    assert before == pytest.approx(5.0, abs=0.3)  # an untrained policy pulls about at random
    assert after > 5.5  # random pulling earns 5.0 ± 0.1 on these 1,000 bandits


def test_mdp_trials_restart_each_episode_and_flag_its_end():
    mdps = TabularMDPs(states=3, actions=2, horizon=4)
    trials = MDPTrials(mdps, episodes=3)
    policy = RL2Policy(trials.observations, trials.actions, hidden=8)
    played = rollout(policy, trials, trials.sample(5, torch.Generator().manual_seed(0)), torch.Generator())
    assert played.rewards.shape == (5, 12) and played.actions.shape == (5, 12)
    done_flags = played.inputs[0, :, -1]  # the input at step t carries whether step t-1 ended an episode
    assert done_flags.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    states = played.inputs[:, :, :3].argmax(-1)
    assert (states[:, [0, 4, 8]] == 0).all()  # every episode starts in state 0


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 0.2, 0.1]])
    advantage, target = advantages(rewards, values, discount=0.9, gae_lambda=1.0)
    returns = torch.tensor([[1 + 0.9**2 * 2, 0.9 * 2, 2.0]])
    assert torch.allclose(advantage, returns - values) and torch.allclose(target, returns)


def test_value_scale_is_training_on_rewards_divided_by_it():
    """Advantages are standardised, so the scale only changes the units the value head learns in."""
    trials = BanditTrials(arms=3, pulls=6)
    torch.manual_seed(0)
    scaled = RL2Policy(1, 3, hidden=8)
    plain = RL2Policy(1, 3, hidden=8)
    plain.load_state_dict(scaled.state_dict())
    batch = rollout(
        scaled, trials, trials.sample(16, torch.Generator().manual_seed(1)), torch.Generator().manual_seed(2)
    )
    divided = replace(batch, rewards=batch.rewards / 10)
    for policy, data, config in ((scaled, batch, PPOConfig(value_scale=10.0)), (plain, divided, PPOConfig())):
        torch.manual_seed(3)  # the same minibatch order
        ppo_update(policy, torch.optim.Adam(policy.parameters(), lr=1e-2), data, config)
    for a, b in zip(scaled.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    torch.manual_seed(0)
    unscaled = RL2Policy(1, 3, hidden=8)  # and the scale does matter: the same rewards at scale one move elsewhere
    torch.manual_seed(3)
    ppo_update(unscaled, torch.optim.Adam(unscaled.parameters(), lr=1e-2), batch, PPOConfig())
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(unscaled.parameters(), scaled.parameters()))


def test_a_trial_played_step_by_step_is_the_trial_rerun_whole():
    """PPO reruns each trial from its start: the state carried step by step must give the rollout's own
    log-probabilities and values."""
    trials = MDPTrials(TabularMDPs(states=3, actions=2, horizon=4), episodes=3)
    torch.manual_seed(0)
    policy = RL2Policy(trials.observations, trials.actions, hidden=8)
    played = rollout(policy, trials, trials.sample(5, torch.Generator().manual_seed(0)), torch.Generator())
    logits, values, _ = policy(played.inputs)
    log_probs = torch.distributions.Categorical(logits=logits).log_prob(played.actions)
    assert torch.allclose(log_probs, played.log_probs, atol=1e-6) and torch.allclose(values, played.values, atol=1e-6)
