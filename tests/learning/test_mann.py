"""The memory-augmented network: least-recently-used access, and learning to bind labels in memory."""

import pytest
import torch
from helpers import meta_train
from torch import nn

from learntolearn.algorithms.mann import (
    LRUMemory,
    MemoryAugmentedNetwork,
    NTMMemory,
    instance_accuracy,
)
from learntolearn.testing import point_task
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


def ntm_head(key: torch.Tensor, beta: float, gate: float, gamma: float, shift: list[float]) -> torch.Tensor:
    """Raw head outputs ``(1, 1, width + 6)`` giving softplus(beta), sigmoid(gate), 1 + softplus(gamma) ~ the values."""
    return torch.cat([key, torch.tensor([beta, gate, gamma]), torch.tensor(shift)]).view(1, 1, -1)


def test_ntm_addressing_follows_graves_et_al_equations_5_to_9():
    memory = NTMMemory(input_dim=3, classes=2, hidden=8, slots=5, width=4, heads=1)
    rows = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(0))
    key = torch.randn(4)
    previous = torch.tensor([[[0.0, 0.0, 1.0, 0.0, 0.0]]])
    no_shift, plus_one = [-50.0, 50.0, -50.0], [-50.0, -50.0, 50.0]
    content = memory.address(ntm_head(key, 3.0, 50.0, -50.0, no_shift), rows, previous)
    beta = torch.nn.functional.softplus(torch.tensor(3.0))
    expected = (beta * torch.nn.functional.cosine_similarity(key.expand(5, 4), rows[0], dim=-1)).softmax(-1)
    torch.testing.assert_close(content[0, 0], expected)
    shifted_previous = memory.address(ntm_head(key, 3.0, -50.0, -50.0, plus_one), rows, previous)
    torch.testing.assert_close(shifted_previous[0, 0], torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))
    wrapped = memory.address(ntm_head(key, 3.0, -50.0, -50.0, plus_one), rows, previous.roll(2, -1))
    assert wrapped[0, 0].argmax() == 0
    sharp = memory.address(ntm_head(key, 3.0, 50.0, 5.0, no_shift), rows, previous)
    gamma = 1 + torch.nn.functional.softplus(torch.tensor(5.0))
    torch.testing.assert_close(sharp[0, 0], expected**gamma / (expected**gamma).sum())


def test_ntm_write_erases_then_adds_at_the_write_weights():
    memory = NTMMemory(input_dim=3, classes=2, hidden=8, slots=5, width=4, heads=1)
    state = memory.initial_state(1, torch.device("cpu"))
    state.memory = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(1))
    state.write_weights = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]]])
    with torch.no_grad():
        memory.write_head.weight.zero_()
        bias = memory.write_head.bias
        bias.zero_()
        bias[4:7] = torch.tensor([0.0, -50.0, -50.0])  # beta, gate -> 0: keep the previous weights, gamma ~ 1
        bias[7:10] = torch.tensor([-50.0, 50.0, -50.0])  # no shift
        bias[10:14] = 50.0  # erase everything in the addressed row
        bias[14:18] = torch.tensor([0.1, -0.2, 0.3, 0.4])
        _, after = memory.step(torch.randn(1, 3), torch.zeros(1, 2), state)
    untouched = [0, 2, 3, 4]
    torch.testing.assert_close(after.memory[0, untouched], state.memory[0, untouched])
    torch.testing.assert_close(after.memory[0, 1], torch.tanh(torch.tensor([0.1, -0.2, 0.3, 0.4])))
    torch.testing.assert_close(after.reads, (after.read_weights @ after.memory).flatten(1))


def sequence_task(generator: torch.Generator) -> Task:
    """3 classes of 5 noisy copies of a random point; the first copy of each is the support set."""
    return point_task(generator, ways=3, shots=1, queries=4, dim=8, noise=0.2, noisy_support=True)


@pytest.mark.slow
@pytest.mark.parametrize("memory", ["lru", "ntm"])
def test_mann_learns_to_recall_labels_from_memory(memory):
    """After training, a class's 2nd..5th appearance is labelled far above the 1/3 of chance."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MemoryAugmentedNetwork(nn.Flatten(), 8, 3, memory=memory, hidden=64, slots=32, width=16, heads=1)
    test = [sequence_task(torch.Generator().manual_seed(100 + i)) for i in range(100)]
    before = instance_accuracy(model, test, 5)
    meta_train(
        model, lambda: [sequence_task(generator) for _ in range(16)], 600, torch.optim.Adam(model.parameters(), lr=1e-2)
    )
    after = instance_accuracy(model, test, 5)
    assert after[1:].mean() > 0.6 and after[1:].mean() > before[1:].mean() + 0.2, (before, after)
    task = test[0]
    model.eval()
    with torch.no_grad():
        logits = model.predict(model.adapt(task.support_x, task.support_y), task.query_x)
    assert logits.shape == (12, 3)


def test_sequences_longer_than_memory_and_labels_out_of_range_and_unknown_memories_are_refused():
    model = MemoryAugmentedNetwork(nn.Flatten(), 8, 3, hidden=8, slots=10, width=4, heads=1)
    with pytest.raises(ValueError, match="sequence of 15 items is longer than the memory's 10 rows"):
        model.meta_loss([sequence_task(torch.Generator().manual_seed(0))])
    with pytest.raises(ValueError, match="labels of up to 3 classes, got label 3"):
        model.adapt(torch.randn(4, 8), torch.arange(4))
    with pytest.raises(ValueError, match="unknown memory 'dnc'; valid: lru, ntm"):
        MemoryAugmentedNetwork(nn.Flatten(), 8, 3, memory="dnc")
