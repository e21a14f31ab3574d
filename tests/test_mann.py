"""The memory-augmented network: least-recently-used access, and learning to bind labels in memory."""

import torch
from helpers import meta_train
from torch import nn

from learntolearn.algorithms.mann import (
    LRUMemory,
    MemoryAugmentedNetwork,
    instance_accuracy,
)
from learntolearn.types import Task


def test_least_used_rows_are_the_heads_smallest_usages_and_are_cleared_before_writing():
    memory = LRUMemory(input_dim=3, classes=2, hidden=8, slots=5, width=4, heads=2)
    usage = torch.tensor([[[0.5, 0.1, 0.9, 0.05, 0.7]]])
    assert memory.least_used(usage).tolist() == [[[0.0, 1.0, 0.0, 1.0, 0.0]]]
    state = memory.initial_state(1, torch.device("cpu"))
    state.memory = torch.ones(1, 5, 4) * 7.0
    state.usage = usage
    with torch.no_grad():
        memory.gates.bias.fill_(-50.0)  # sigmoid(alpha) ~ 0: write only to the least-used rows
        _, after = memory.step(torch.randn(1, 3), torch.zeros(1, 2), state)
    untouched = [0, 2, 4]
    assert torch.equal(after.memory[0, untouched], state.memory[0, untouched])
    keys = torch.tanh(memory.keys(after.h)).view(2, 4)
    torch.testing.assert_close(after.memory[0, [1, 3]], keys.sum(0).expand(2, 4) / 2)


def sequence_task(generator: torch.Generator, ways: int = 3, per_class: int = 5, dim: int = 8) -> Task:
    """Each class is a random point; its instances are noisy copies (first one as support, others as queries)."""
    centres = torch.randn(ways, dim, generator=generator)
    x = centres.repeat_interleave(per_class, 0) + 0.2 * torch.randn(ways * per_class, dim, generator=generator)
    y = torch.arange(ways).repeat_interleave(per_class)
    first = torch.arange(ways * per_class) % per_class == 0
    return Task(x[first], y[first], x[~first], y[~first], torch.arange(ways))


def test_mann_learns_to_recall_labels_from_memory():
    """After training, a class's 2nd..5th appearance is labelled far above the 1/3 of chance."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MemoryAugmentedNetwork(nn.Flatten(), 8, 3, hidden=64, slots=32, width=16, heads=1)
    test = [sequence_task(torch.Generator().manual_seed(100 + i)) for i in range(100)]
    before = instance_accuracy(model, test, 5)
    meta_train(model, lambda: [sequence_task(generator) for _ in range(16)], 600,
               torch.optim.Adam(model.parameters(), lr=1e-2))
    after = instance_accuracy(model, test, 5)
    assert after[1:].mean() > 0.6 and after[1:].mean() > before[1:].mean() + 0.2, (before, after)
    task = test[0]
    model.eval()
    with torch.no_grad():
        logits = model.predict(model.adapt(task.support_x, task.support_y), task.query_x)
    assert logits.shape == (12, 3)


def test_sequences_longer_than_memory_and_labels_out_of_range_are_refused():
    import pytest

    model = MemoryAugmentedNetwork(nn.Flatten(), 8, 3, hidden=8, slots=10, width=4, heads=1)
    with pytest.raises(ValueError, match="sequence of 15 items is longer than the memory's 10 rows"):
        model.meta_loss([sequence_task(torch.Generator().manual_seed(0))])
    with pytest.raises(ValueError, match="labels of up to 3 classes, got label 3"):
        model.adapt(torch.randn(4, 8), torch.arange(4))
