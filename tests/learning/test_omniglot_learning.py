"""End to end on the real archives: a short ProtoNets run must learn Omniglot (not a paper number).

Measured: 55% before and 89% after 200 episodes (5-way 1-shot, 200 test episodes, seed 0).
"""

import pytest

from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import evaluate
from learntolearn.engine.trainer import Trainer


@pytest.mark.slow
def test_protonet_learns_omniglot_5way_1shot_in_a_few_hundred_episodes(data_root, tmp_path):
    config = TrainConfig.create(
        split="vinyals",
        ways=5,
        shots=1,
        queries=5,
        train_ways=20,
        train_queries=5,
        steps=200,
        val_every=0,
        test_episodes=200,
        seed=0,
    )
    trainer = Trainer(config, tmp_path / "run", data_root=str(data_root), progress=False)
    untrained = evaluate(trainer.algorithm, trainer.source.test(), progress=False)
    result = trainer.run()
    assert result.mean > 0.85 and result.mean > untrained.mean + 0.2, (str(untrained), str(result))
