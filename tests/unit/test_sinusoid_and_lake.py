import math

import torch

from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.data.sinusoid import SinusoidTasks


def test_sinusoid_tasks_follow_the_maml_distribution():
    tasks = SinusoidTasks(shots=10, queries=5, seed=0)
    draws = [tasks.sample() for _ in range(500)]
    amplitude, phase = torch.stack([t.parameters for t in draws]).T
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0 and amplitude.max() > 4.5
    assert 0 <= phase.min() and phase.max() <= math.pi
    task = draws[0]
    assert task.support_x.shape == (10, 1) and task.query_y.shape == (5, 1)
    assert task.support_x.abs().max() <= 5
    a, p = task.parameters
    assert torch.allclose(task.support_y, a * torch.sin(task.support_x - p))
    again = SinusoidTasks(shots=10, queries=5, seed=0).sample()
    assert torch.equal(again.query_x, task.query_x)


def test_lake_runs_are_twenty_20_way_one_shot_tasks(data_root):
    runs = load_lake_runs(data_root=data_root)
    assert len(runs) == 20
    for task in runs:
        assert task.support_x.shape == (20, 1, 28, 28) and task.query_x.shape == (20, 1, 28, 28)
        assert task.support_y.tolist() == list(range(20))
        assert sorted(task.query_y.tolist()) == list(range(20)), "each run has one test item per class"
    # run01's first line: test/item01.png is training/class08.png
    assert runs[0].query_y[0] == 7


def test_lake_runs_match_their_characters_better_than_chance_in_pixel_space(data_root):
    """Nearest support image by pixel distance gets well above 1/20: labels and images line up."""
    runs = load_lake_runs(data_root=data_root)
    correct = sum(
        int((torch.cdist(t.query_x.flatten(1), t.support_x.flatten(1)).argmin(1) == t.query_y).sum()) for t in runs
    )
    assert correct / 400 > 0.2
