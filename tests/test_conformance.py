"""Every registered algorithm: trains through the shared Trainer, is deterministic, and round-trips its state."""

import pytest
import torch

from learntolearn.algorithms import ALGORITHMS
from learntolearn.engine.trainer import TrainConfig, Trainer, build_algorithm

BACKBONE = {"relation": {"backbone": "conv4-maps", "image_size": 28}}


def config(name: str, **overrides) -> TrainConfig:
    overrides = {**BACKBONE.get(name, {}), **overrides}
    return TrainConfig(**{"algorithm": name, "dataset": "synthetic", "split": "default", "image_size": 16, "ways": 5,
                          "shots": 1, "queries": 3, "steps": 4, "meta_batch": 2, "val_every": 2, "val_episodes": 4,
                          "test_episodes": 4, "inner_steps": 1, "test_inner_steps": 2, "adapt_steps": 3, **overrides})


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_trains_deterministically_and_round_trips(name, tmp_path):
    runs, results = [], []
    for i in range(2):  # the Trainer seeds torch's global generator, which algorithms may draw from (e.g. shuffles)
        runs.append(Trainer(config(name), tmp_path / f"run{i}", progress=False))
        results.append(runs[-1].run())
    assert torch.equal(results[0].accuracies, results[1].accuracies)
    for a, b in zip(runs[0].algorithm.state_dict().values(), runs[1].algorithm.state_dict().values()):
        assert torch.equal(a, b)
    fresh = build_algorithm(config(name), runs[0].train_data.image_shape, runs[0].train_data.n_classes)
    fresh.load_state_dict(runs[0].algorithm.state_dict())
    task = next(runs[0].test_episodes.tasks(runs[0].test_data))
    fresh.eval()
    runs[0].algorithm.eval()
    logits = fresh.predict(fresh.adapt(task.support_x, task.support_y), task.query_x)
    assert logits.shape == (15, 5)
    assert torch.allclose(logits, runs[0].algorithm.predict(runs[0].algorithm.adapt(task.support_x, task.support_y), task.query_x))


def test_gradient_based_algorithms_need_train_ways_equal_to_ways():
    with pytest.raises(ValueError, match="train_ways \\(20\\) must equal ways \\(5\\)"):
        config("maml", train_ways=20)
