"""Every registered algorithm passes the public conformance check, and configs refuse what it cannot do."""

import pytest

from learntolearn.algorithms import ALGORITHMS
from learntolearn.testing import check_algorithm, tiny_config


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_trains_deterministically_and_round_trips(name, tmp_path):
    check_algorithm(name, tmp_path)


def test_fixed_way_algorithms_need_train_ways_equal_to_ways():
    with pytest.raises(ValueError, match="train_ways \\(20\\) must equal ways \\(5\\)"):
        tiny_config("maml", train_ways=20)
    assert tiny_config("protonet", train_ways=20).episodes.training_ways == 20
    assert tiny_config("baseline", train_ways=20).episodes.training_ways == 20, "baselines fit a head per task"


def test_the_check_fails_for_an_algorithm_that_is_not_deterministic(tmp_path, monkeypatch):
    from learntolearn.algorithms.protonet import PrototypicalNetworks

    calls = []

    def noisy_embed(self, x):
        calls.append(1)
        return self.backbone(x) + 1e-3 * len(calls)

    monkeypatch.setattr(PrototypicalNetworks, "embed", noisy_embed)
    with pytest.raises(AssertionError, match="protonet: two runs on one seed"):
        check_algorithm("protonet", tmp_path)
