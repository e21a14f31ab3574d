"""Memory-augmented neural network (Santoro, Bartunov, Botvinick, Wierstra & Lillicrap, ICML 2016).

An episode is one sequence: at step t the network sees ``x_t`` and the *previous* item's label
``y_{t-1}`` (one step late) and must predict ``y_t``. An LSTM controller emits a key ``k_t``; reads
attend over memory rows by cosine similarity (Eq. 2-4); writes go to the previously read rows or to
the least-used row, interpolated by a learned gate (least-recently-used access, Eq. 5-8), after the
least-used row is cleared. The output is a softmax over the controller state and the reads.

``meta_loss`` presents every support and query item of a task in random order and scores every
step, as the paper trains; :func:`instance_accuracy` gives accuracy on the 1st, 2nd, ... appearance
of a class. ``adapt`` writes the support set into memory (one step late, as in training) and
``predict`` presents each query from that state.

``memory="ntm"`` swaps the least-recently-used memory for a Neural Turing Machine's (Graves, Wayne &
Danihelka 2014, Section 3.3): content, interpolation, shift and sharpening addressing, erase-then-add
writes. Controller, label encoding, episodes and loss are shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import (
    ALGORITHMS,
    PRECISIONS,
    Algorithm,
    AlgorithmConfig,
    MetaLoss,
    ModelSetting,
    check_query,
    check_support,
    flat_embeddings,
)
from learntolearn.errors import ConfigError, TaskError
from learntolearn.settings import setting
from learntolearn.types import Task


@dataclass
class MemoryState:
    """Batched state: LSTM (h, c), memory ``(B, slots, width)``, read/usage weights ``(B, heads|1, slots)``, reads."""

    h: Tensor
    c: Tensor
    memory: Tensor
    read_weights: Tensor
    usage: Tensor
    reads: Tensor


class LRUMemory(nn.Module):
    """LSTM controller + external memory with least-recently-used writes."""

    def __init__(
        self,
        input_dim: int,
        classes: int,
        *,
        hidden: int = 200,
        slots: int = 128,
        width: int = 40,
        heads: int = 4,
        gamma: float = 0.95,
    ) -> None:
        super().__init__()
        self.classes, self.hidden, self.slots, self.width, self.heads, self.gamma = (
            classes,
            hidden,
            slots,
            width,
            heads,
            gamma,
        )
        self.controller = nn.LSTMCell(input_dim + classes + heads * width, hidden)
        self.keys = nn.Linear(hidden, heads * width)
        self.gates = nn.Linear(hidden, heads)
        self.output = nn.Linear(hidden + heads * width, classes)

    def initial_state(self, batch: int, device: torch.device) -> MemoryState:
        zeros = torch.zeros
        one_hot_first = F.one_hot(torch.zeros(batch, self.heads, dtype=torch.long), self.slots).float().to(device)
        return MemoryState(
            zeros(batch, self.hidden, device=device),
            zeros(batch, self.hidden, device=device),
            torch.full((batch, self.slots, self.width), 1e-6, device=device),
            one_hot_first,
            zeros(batch, 1, self.slots, device=device),
            zeros(batch, self.heads * self.width, device=device),
        )

    def least_used(self, usage: Tensor) -> Tensor:
        """Eq. 8: 1 on the ``heads`` least-used rows, 0 elsewhere; ``(B, 1, slots)``."""
        smallest = usage.topk(self.heads, dim=-1, largest=False).values[..., -1:]
        return (usage <= smallest).float()

    def step(self, x: Tensor, previous_label: Tensor, state: MemoryState) -> tuple[Tensor, MemoryState]:
        """Logits ``(B, classes)`` for inputs ``x`` ``(B, d)`` given one-hot previous labels."""
        h, c = self.controller(torch.cat([x, previous_label, state.reads], -1), (state.h, state.c))
        keys = torch.tanh(self.keys(h)).view(-1, self.heads, self.width)
        alpha = torch.sigmoid(self.gates(h)).unsqueeze(-1)
        least_used = self.least_used(state.usage)
        write_weights = alpha * state.read_weights + (1 - alpha) * least_used / least_used.sum(-1, keepdim=True)
        memory = state.memory * (1 - least_used.transpose(1, 2))
        memory = memory + write_weights.transpose(1, 2) @ keys
        similarity = F.cosine_similarity(keys.unsqueeze(2), memory.unsqueeze(1), dim=-1, eps=1e-8)
        read_weights = similarity.softmax(-1)
        reads = (read_weights @ memory).flatten(1)
        usage = self.gamma * state.usage + read_weights.sum(1, keepdim=True) + write_weights.sum(1, keepdim=True)
        logits = self.output(torch.cat([h, reads], -1))
        return logits, MemoryState(h, c, memory, read_weights, usage, reads)


@dataclass
class NTMState:
    """Batched state: LSTM (h, c), memory ``(B, slots, width)``, read ``(B, heads, slots)`` and write
    ``(B, 1, slots)`` weights of the previous step, reads."""

    h: Tensor
    c: Tensor
    memory: Tensor
    read_weights: Tensor
    write_weights: Tensor
    reads: Tensor


class NTMMemory(nn.Module):
    """LSTM controller + Neural Turing Machine memory: ``heads`` read heads and one write head.

    Each head addresses memory as Graves et al. 2014, Eq. 5-9: content weights softmax(beta * cosine(key,
    row)), interpolated with the head's previous weights by a gate g, circularly convolved with a
    softmax over shifts -shifts..shifts, then sharpened by gamma >= 1. The write head erases then adds
    (Eq. 3-4); the read heads then read the updated memory (Eq. 2).
    """

    def __init__(
        self,
        input_dim: int,
        classes: int,
        *,
        hidden: int = 200,
        slots: int = 128,
        width: int = 40,
        heads: int = 4,
        shifts: int = 1,
    ) -> None:
        super().__init__()
        self.classes, self.hidden, self.slots, self.width, self.heads = classes, hidden, slots, width, heads
        self.split_sizes = [width, 1, 1, 1, 2 * shifts + 1]  # key, beta, gate, gamma, shift
        self.offsets = range(-shifts, shifts + 1)
        self.controller = nn.LSTMCell(input_dim + classes + heads * width, hidden)
        self.read_heads = nn.Linear(hidden, heads * sum(self.split_sizes))
        self.write_head = nn.Linear(hidden, sum(self.split_sizes) + 2 * width)
        self.output = nn.Linear(hidden + heads * width, classes)

    def initial_state(self, batch: int, device: torch.device) -> NTMState:
        zeros = torch.zeros
        first_row = F.one_hot(torch.zeros(batch, 1, dtype=torch.long), self.slots).float().to(device)
        return NTMState(
            zeros(batch, self.hidden, device=device),
            zeros(batch, self.hidden, device=device),
            torch.full((batch, self.slots, self.width), 1e-6, device=device),
            first_row.expand(-1, self.heads, -1),
            first_row,
            zeros(batch, self.heads * self.width, device=device),
        )

    def address(self, head: Tensor, memory: Tensor, previous: Tensor) -> Tensor:
        """Weights ``(B, H, slots)`` from head outputs ``(B, H, sum(split_sizes))`` (Eq. 5-9)."""
        key, beta, gate, gamma, shift = head.split(self.split_sizes, -1)
        similarity = F.cosine_similarity(key.unsqueeze(2), memory.unsqueeze(1), dim=-1, eps=1e-8)
        content = (F.softplus(beta) * similarity).softmax(-1)
        gate = torch.sigmoid(gate)
        gated = gate * content + (1 - gate) * previous
        shifted = torch.stack([gated.roll(offset, -1) for offset in self.offsets], -1) @ shift.softmax(-1).unsqueeze(-1)
        sharpened = shifted.squeeze(-1).clamp_min(1e-12) ** (1 + F.softplus(gamma))
        return sharpened / sharpened.sum(-1, keepdim=True)

    def step(self, x: Tensor, previous_label: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        """Logits ``(B, classes)`` for inputs ``x`` ``(B, d)`` given one-hot previous labels."""
        h, c = self.controller(torch.cat([x, previous_label, state.reads], -1), (state.h, state.c))
        write, erase, add = self.write_head(h).unsqueeze(1).split([sum(self.split_sizes), self.width, self.width], -1)
        write_weights = self.address(write, state.memory, state.write_weights)
        weights = write_weights.transpose(1, 2)
        memory = state.memory * (1 - weights @ torch.sigmoid(erase)) + weights @ torch.tanh(add)
        read_weights = self.address(
            self.read_heads(h).view(-1, self.heads, sum(self.split_sizes)), memory, state.read_weights
        )
        reads = (read_weights @ memory).flatten(1)
        logits = self.output(torch.cat([h, reads], -1))
        return logits, NTMState(h, c, memory, read_weights, write_weights, reads)


MEMORIES: dict[str, type[LRUMemory] | type[NTMMemory]] = {"lru": LRUMemory, "ntm": NTMMemory}


@dataclass(frozen=True)
class MANNConfig(AlgorithmConfig):
    """The memory-augmented network's settings."""

    section = "mann"

    memory: str = setting(
        "lru", "Memory: least-recently-used access (Santoro et al.) or Neural Turing Machine.", choices=tuple(MEMORIES)
    )


@ALGORITHMS.register("mann")
class MemoryAugmentedNetwork(Algorithm):
    """Santoro et al.'s MANN over any flat-embedding backbone (``pixels`` reads raw pixels, as the paper).

    ``memory`` is ``"lru"`` (the paper's least-recently-used access) or ``"ntm"`` (Neural Turing Machine
    addressing); ``memory_options`` go to that memory (hidden, slots, width, heads; ``shifts`` for NTM).
    """

    memory: LRUMemory | NTMMemory
    Config = MANNConfig
    precisions = PRECISIONS

    def __init__(
        self, backbone: nn.Module, input_dim: int, classes: int, *, memory: str = "lru", **memory_options
    ) -> None:
        super().__init__()
        if memory not in MEMORIES:
            raise ConfigError(f"unknown memory {memory!r}; valid: {', '.join(MEMORIES)}")
        self.backbone, self.classes = backbone, classes
        self.memory = MEMORIES[memory](input_dim, classes, **memory_options)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> MemoryAugmentedNetwork:
        return cls(backbone, setting.output_shape[0], setting.max_ways, **config.to_dict())

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "the memory-augmented network")

    def one_hot(self, labels: Tensor) -> Tensor:
        if int(labels.max()) >= self.classes:
            raise TaskError(
                f"this memory-augmented network encodes labels of up to {self.classes} classes, got label "
                f"{int(labels.max())}; build it with more classes (config: ways / train_ways)"
            )
        return F.one_hot(labels, self.classes).float()

    def run(
        self, x: Tensor, labels: Tensor, state: MemoryState | NTMState | None = None
    ) -> tuple[Tensor, MemoryState | NTMState]:
        """Present sequences ``x`` ``(B, T, ...)`` with labels ``(B, T)`` one step late; logits ``(B, T, classes)``."""
        batch, steps = labels.shape
        if steps > self.memory.slots:
            raise TaskError(
                f"a sequence of {steps} items is longer than the memory's {self.memory.slots} rows, so "
                f"items would be overwritten before the episode ends; build the network with slots >= {steps}"
            )
        inputs = self.embed(x.flatten(0, 1)).view(batch, steps, -1)
        previous = torch.cat([torch.zeros(batch, 1, self.classes, device=x.device), self.one_hot(labels)[:, :-1]], 1)
        state = state or self.memory.initial_state(batch, x.device)
        outputs = []
        for t in range(steps):
            logits, state = self.memory.step(inputs[:, t], previous[:, t], state)  # type: ignore[arg-type]  # its own state
            outputs.append(logits)
        return torch.stack(outputs, 1), state

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[MemoryState | NTMState, Tensor, int]:
        ways = check_support(support_x, support_y)
        order = torch.randperm(len(support_y), generator=torch.Generator().manual_seed(0)).to(support_y.device)
        _, state = self.run(support_x[order].unsqueeze(0), support_y[order].unsqueeze(0))
        return state, self.one_hot(support_y[order][-1:]), ways

    def predict(self, adapted: tuple[MemoryState | NTMState, Tensor, int], query_x: Tensor) -> Tensor:
        state, last_label, ways = adapted
        n = query_x.shape[0]
        expanded = type(state)(
            *(getattr(state, f.name).expand(n, *getattr(state, f.name).shape[1:]) for f in fields(state))
        )
        logits, _ = self.memory.step(self.embed(query_x), last_label.expand(n, -1), expanded)  # type: ignore[arg-type]
        return logits[:, :ways]

    def sequences(self, tasks: Sequence[Task]) -> tuple[Tensor, Tensor]:
        """Each task's support and query items in a random order, stacked: ``(B, T, ...)``, ``(B, T)``."""
        xs, ys = [], []
        for task in tasks:
            check_support(task.support_x, task.support_y)
            check_query(task.support_x, task.query_x)
            x, y = torch.cat([task.support_x, task.query_x]), torch.cat([task.support_y, task.query_y])
            order = self.permutation(len(y), y.device)
            xs.append(x[order])
            ys.append(y[order])
        if len({len(y) for y in ys}) != 1:
            raise TaskError("a meta-batch of sequences needs tasks of equal length")
        return torch.stack(xs), torch.stack(ys)

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        x, y = self.sequences(tasks)
        logits, _ = self.run(x, y)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return MetaLoss(loss, float((logits.argmax(-1) == y).float().mean()))


def instance_accuracy(model: MemoryAugmentedNetwork, tasks: Sequence[Task], instances: int = 10) -> Tensor:
    """Accuracy on the 1st, 2nd, ..., ``instances``-th appearance of a class in the episode sequences."""
    correct, seen = torch.zeros(instances), torch.zeros(instances)
    model.eval()
    with torch.no_grad():
        x, y = model.sequences(tasks)
        logits, _ = model.run(x, y)
        hits = logits.argmax(-1) == y
        for b in range(y.shape[0]):
            counts: dict[int, int] = {}
            for t, label in enumerate(y[b].tolist()):
                k = counts.get(label, 0)
                counts[label] = k + 1
                if k < instances:
                    correct[k] += float(hits[b, t])
                    seen[k] += 1
    return correct / seen.clamp_min(1)
