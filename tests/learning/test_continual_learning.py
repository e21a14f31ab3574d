"""OML and ANML, meta-trained briefly on a toy class distribution, learn a stream of new classes one image at a
time and forget less of it than the same network trained online from scratch."""

from dataclasses import replace

import pytest
import torch

from learntolearn.continual.layers import with_fresh_output
from learntolearn.continual.runs import meta_train, network, preset
from learntolearn.continual.stream import ClassIncrementalSplit, OnlineLearner, learn_stream

pytestmark = pytest.mark.slow


def toy_classes(classes, per_class, seed):
    """Each class a random blob pattern; its images that pattern with pixel noise."""
    generator = torch.Generator().manual_seed(seed)
    patterns = (torch.rand(classes, 1, 1, 28, 28, generator=generator) < 0.2).float()
    noise = torch.rand(classes, per_class, 1, 28, 28, generator=generator) < 0.1
    return (patterns + noise).clamp(max=1) * (1 - 0.5 * noise)


def memorised(learner_for, split, orders):
    return sum(learn_stream(learner_for(), split, order)["memorisation"] for order in orders) / len(orders)


@pytest.mark.parametrize(
    ("algorithm", "inner_lr", "meta_lr", "steps"), [("oml", 0.1, 3e-3, 150), ("anml", 0.03, 1e-3, 300)]
)
def test_meta_learned_networks_forget_less_than_scratch_sgd(algorithm, inner_lr, meta_lr, steps, tmp_path):
    config = replace(
        preset(f"{algorithm}-omniglot"),
        channels=8,
        hidden=32,
        nm_channels=4,
        classes=40,
        trajectory=5,
        remember=16,
        steps=steps,
        inner_lr=inner_lr,
        meta_lr=meta_lr,
        checkpoint_every=50,
    )
    params = meta_train(config, toy_classes(30, 10, seed=0), tmp_path / "run", log=lambda _: None)
    held = toy_classes(10, 8, seed=1)
    split = ClassIncrementalSplit(held[:, :5], held[:, 5:], tuple(f"c{i}" for i in range(10)))
    orders = [torch.randperm(10, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    net = network(config)

    def best(make):  # each learner at its best online rate of a small grid, as the protocol tunes it
        return max(memorised(lambda lr=lr: make(lr), split, orders) for lr in (0.01, 0.03, 0.1, 0.3))

    start = with_fresh_output(params, net.output, torch.Generator().manual_seed(7))
    meta = best(lambda lr: OnlineLearner(net.logits, start, net.meta_test_fast, lr))
    scratch = best(lambda lr: OnlineLearner(net.logits, net.params, tuple(net.params), lr))
    assert meta > scratch + 0.1, (meta, scratch)
