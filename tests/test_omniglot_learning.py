"""End to end on the real archives: a short ProtoNets run must learn Omniglot (not a paper number)."""

import pytest

from learntolearn.engine.trainer import TrainConfig, Trainer


@pytest.mark.slow
def test_protonet_learns_omniglot_5way_1shot_in_a_few_hundred_episodes(data_root, tmp_path):
    config = TrainConfig(split="vinyals", ways=5, shots=1, queries=5, train_ways=20, train_queries=5, steps=200,
                         val_every=0, test_episodes=200, seed=0)
    trainer = Trainer(config, tmp_path / "run", data_root=str(data_root), progress=False)
    result = trainer.run()
    assert result.mean > 0.9, str(result)
