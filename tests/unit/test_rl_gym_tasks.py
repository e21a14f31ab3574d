"""Gymnasium task distributions: the HalfCheetah rewards, every vector copy running its own task, the vector
simulator equal to the tensor simulator on navigation, and errors naming the problem."""

import numpy as np
import pytest
import torch

from learntolearn.errors import TaskError
from learntolearn.rl.gym_tasks import (
    CONTROL_COST,
    CheetahTask,
    VectorTasks,
    cheetah_directions,
    cheetah_velocities,
    point_navigation,
)
from learntolearn.rl.maml_rl import init_policy, sample_episodes
from learntolearn.rl.tasks import PointNavigation


@pytest.mark.parametrize("kind", ["direction", "velocity"])
def test_cheetah_rewards_follow_the_task_and_clip_actions(kind):
    env = CheetahTask(kind, horizon=5)
    env.task = -1.0 if kind == "direction" else 1.5
    env.reset(seed=0)
    action = np.array([2.0, -3.0, 0.5, 0.0, 0.0, 0.25])
    _, reward, _, _, info = env.step(action)
    velocity, control = info["x_velocity"], CONTROL_COST * (1 + 1 + 0.25 + 0.0625)  # clipped to [-1, 1]
    expected = -velocity - control if kind == "direction" else -abs(velocity - 1.5) - control
    assert reward == pytest.approx(expected)
    for _ in range(4):
        *_, truncated, _ = env.step(np.zeros(6))
    assert truncated  # episodes of ``horizon`` steps


def test_task_samplers_draw_the_papers_distributions():
    directions = cheetah_directions().sample(1000, torch.Generator().manual_seed(0))
    assert set(directions.flatten().tolist()) == {-1.0, 1.0} and abs(directions.mean()) < 0.1
    velocities = cheetah_velocities().sample(1000, torch.Generator().manual_seed(0))
    assert 0 <= velocities.min() and velocities.max() <= 2 and abs(velocities.mean() - 1) < 0.1


def test_every_vector_copy_runs_its_own_task():
    sampler = cheetah_directions(horizon=20)
    params = init_policy(17, 6, (8,), torch.Generator().manual_seed(0))
    directions = torch.tensor([[1.0], [-1.0]])
    with VectorTasks(sampler, tasks=2, episodes=2) as env:
        episodes = sample_episodes(params, env, directions, 2, torch.Generator().manual_seed(0))
    assert episodes.observations.shape == (2, 2, 20, 17) and episodes.actions.shape == (2, 2, 20, 6)
    # replay each copy's actions in a lone environment with that copy's task and reset seed (the vector env
    # seeds copy i with seed + i, the seed drawn from the generator)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(0)))
    for copy in range(4):
        task, episode = divmod(copy, 2)
        lone = CheetahTask("direction", horizon=20)
        lone.task = float(directions[task])
        observation, _ = lone.reset(seed=seed + copy)
        assert np.allclose(observation, episodes.observations[task, episode, 0].numpy(), atol=1e-6)
        rewards = [lone.step(action.numpy())[1] for action in episodes.actions[task, episode]]
        assert np.allclose(rewards, episodes.rewards[task, episode].numpy(), atol=1e-5)


def test_the_vector_simulator_equals_the_tensor_simulator_on_navigation():
    goals = PointNavigation().sample(3, torch.Generator().manual_seed(1)).float()
    goals[0] = torch.tensor([0.05, 0.0])
    # a linear policy heading for (0.05, 0) with little noise: task 0's episodes end at its goal after one step
    params = {
        "layer0.weight": -torch.eye(2),
        "layer0.bias": torch.tensor([0.05, 0.0]),
        "log_std": torch.full((2,), -6.0),
    }
    generator = torch.Generator().manual_seed(3)
    torch.randint(0, 2**31 - 1, (1,), generator=generator)  # the vector simulator's reset seed, drawn first
    tensors = sample_episodes(params, PointNavigation(horizon=30), goals, 4, generator)
    with VectorTasks(point_navigation(horizon=30), tasks=3, episodes=4) as env:
        vector = sample_episodes(params, env, goals, 4, torch.Generator().manual_seed(3))
    assert torch.equal(tensors.mask, vector.mask)
    assert tensors.mask[0].sum() == 4 and tensors.mask[1:].sum() == 2 * 4 * 30
    mask = tensors.mask[..., None]  # after an episode ends the vector env resets that copy: those steps are ignored
    assert torch.allclose(tensors.observations * mask, vector.observations * mask, atol=1e-5)
    assert torch.allclose(tensors.rewards, vector.rewards, atol=1e-5)


def test_vector_episodes_repeat_from_the_same_generator():
    with VectorTasks(cheetah_velocities(horizon=5), tasks=1, episodes=2) as env:
        params = init_policy(17, 6, (8,), torch.Generator().manual_seed(0))
        first = sample_episodes(params, env, torch.tensor([[1.0]]), 2, torch.Generator().manual_seed(7))
        second = sample_episodes(params, env, torch.tensor([[1.0]]), 2, torch.Generator().manual_seed(7))
        third = sample_episodes(params, env, torch.tensor([[1.0]]), 2, torch.Generator().manual_seed(8))
    assert torch.equal(first.observations, second.observations)
    assert not torch.equal(first.observations[:, :, 0], third.observations[:, :, 0])  # reset noise differs


def test_mismatched_policies_and_tasks_are_named():
    with VectorTasks(cheetah_directions(horizon=5), tasks=1, episodes=1) as env:
        wrong_actions = init_policy(17, 4, (8,), torch.Generator().manual_seed(0))
        with pytest.raises(TaskError, match="cheetah-direction takes 6 numbers per action, the policy gives 4"):
            sample_episodes(wrong_actions, env, torch.tensor([[1.0]]), 1, torch.Generator())
        wrong_inputs = init_policy(2, 6, (8,), torch.Generator().manual_seed(0))
        with pytest.raises(TaskError, match="reads 2 numbers per observation, the task gives 17"):
            sample_episodes(wrong_inputs, env, torch.tensor([[1.0]]), 1, torch.Generator())
        with pytest.raises(TaskError, match="runs 1 tasks x 1 episodes, not 2 x 1"):
            env.reset(torch.ones(2, 1), 1)
        with pytest.raises(TaskError, match="a task parameter is not finite for task 0"):
            env.reset(torch.tensor([[float("nan")]]), 1)
