"""In-context continual learning: a sequence model that learns tasks one after another in its state, meta-trained
so that learning task B in context does not erase task A (ACL: Irie, Csordás & Schmidhuber, "Metalearning
continual learning algorithms", TMLR 2025; first "Automating continual learning", 2023).

A sequence is ``T`` few-shot tasks, each ``ways`` classes with ``shots`` labelled examples and ``queries`` unlabelled
ones; every task reuses the label slots ``0 .. ways - 1`` (ACL's setting), so after task B the learner must still
map A's inputs to A's labels. The learner is the library's recurrent learner (an LSTM over ``[x; one_hot(y)]``
tokens) reading the tasks in order; a query is read from the state after a task. Objectives, by which queries
after task ``t`` are scored:

* ``single``: sequences of one task (an ordinary in-context few-shot learner);
* ``current``: task ``t``'s queries only (learns tasks in sequence, never asked to remember);
* ``acl``: the queries of every task ``s <= t`` (ACL's objective: good on old and new tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.recurrent import RecurrentLearner
from learntolearn.errors import TaskError

OBJECTIVES = ("single", "current", "acl")


@dataclass(frozen=True)
class TaskSequences:
    """Which examples make up ``B`` sequences of ``T`` tasks: ``classes[b, t, w]`` is task ``t``'s class with label
    ``w``; ``examples[b, t, w, :shots]`` are its labelled examples, the rest its queries; ``order[b, t]`` is the
    order in which a task's ``ways * shots`` labelled examples are shown."""

    classes: Tensor  # [B, T, ways]
    examples: Tensor  # [B, T, ways, shots + queries]
    order: Tensor  # [B, T, ways * shots]
    shots: int

    def gather(self, data: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Context ``[B, T, ways * shots, ...]`` in the shown order with its labels, queries ``[B, T, ways *
        queries, ...]`` with theirs, from ``data[class, example, ...]``."""
        batch, tasks, ways, per_class = self.examples.shape
        picked = data[self.classes[..., None], self.examples]  # [B, T, ways, per_class, ...]
        labels = torch.arange(ways).view(1, 1, ways, 1).expand(batch, tasks, ways, per_class)

        def flat(part: Tensor) -> Tensor:
            return part.reshape(batch, tasks, -1, *part.shape[4:])

        shown = self.order.view(batch, tasks, -1, *([1] * (data.dim() - 2)))
        context = flat(picked[:, :, :, : self.shots])
        context = context.gather(2, shown.expand(-1, -1, -1, *context.shape[3:]))
        context_labels = flat(labels[..., : self.shots]).gather(2, self.order)
        return context, context_labels, flat(picked[:, :, :, self.shots :]), flat(labels[..., self.shots :])


def task_sequences(
    class_tasks: Tensor, per_class: int, shots: int, queries: int, generator: torch.Generator
) -> TaskSequences:
    """Random examples (``shots + queries`` distinct of ``per_class``) for the given ``[B, T, ways]`` classes, the
    labelled ones shown in a random order."""
    if shots + queries > per_class:
        raise TaskError(
            f"{shots} shots and {queries} queries need {shots + queries} examples a class; {per_class} given"
        )
    draws = torch.rand(*class_tasks.shape, per_class, generator=generator).argsort(-1)[..., : shots + queries]
    order = torch.rand(*class_tasks.shape[:2], class_tasks.shape[2] * shots, generator=generator).argsort(-1)
    return TaskSequences(class_tasks, draws, order, shots)


def grouped_tasks(groups: Tensor, batch: int, tasks: int, ways: int, generator: torch.Generator) -> Tensor:
    """``[batch, tasks, ways]`` classes: each task ``ways`` classes of one group (an Omniglot alphabet), the tasks of a
    sequence from different groups, label slots in random order."""
    members = [torch.nonzero(groups == g).flatten() for g in groups.unique().tolist()]
    usable = [m for m in members if len(m) >= ways]
    if len(usable) < tasks:
        raise TaskError(f"{tasks} tasks of {ways} classes need {tasks} groups with that many; {len(usable)} have")
    rows = []
    for _ in range(batch):
        chosen = torch.randperm(len(usable), generator=generator)[:tasks].tolist()
        rows.append(
            torch.stack([usable[g][torch.randperm(len(usable[g]), generator=generator)[:ways]] for g in chosen])
        )
    return torch.stack(rows)


class InContextContinualLearner(nn.Module):
    """The recurrent learner reading a sequence of tasks, with queries after each task."""

    def __init__(self, features: int, ways: int, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.ways = ways
        self.learner = RecurrentLearner(
            nn.Identity(), features, ways, sequence_model="lstm", hidden=hidden, layers=layers
        )

    def forward(self, context: Tensor, labels: Tensor, queries: Tensor) -> Tensor:
        """Logits ``[B, T, T, Q, ways]``: entry ``[b, t, s]`` classifies task ``s``'s queries after reading tasks
        ``0 .. t`` (zero where ``s > t``)."""
        batch, tasks, per_query = queries.shape[:3]
        if int(labels.max()) >= self.ways:
            raise TaskError(f"label {int(labels.max())} exceeds this learner's {self.ways} label slots")
        one_hot = F.one_hot(labels, self.ways).to(context.dtype)
        tokens = self.learner.tokens(torch.cat([context, one_hot], -1))
        blank = queries.new_zeros(*queries.shape[:-1], self.ways)
        query_tokens = self.learner.tokens(torch.cat([queries, blank], -1))
        logits = queries.new_zeros(batch, tasks, tasks, per_query, self.ways)
        state = None
        for t in range(tasks):
            _, state = self.learner.core(tokens[:, t], state)
            seen = query_tokens[:, : t + 1].reshape(batch, (t + 1) * per_query, -1)
            expanded = tuple(s.repeat_interleave((t + 1) * per_query, dim=1) for s in state)
            out, _ = self.learner.core(seen.reshape(-1, 1, seen.shape[-1]), expanded)
            logits[:, t, : t + 1] = self.learner.readout(out[:, -1]).view(batch, t + 1, per_query, self.ways)
        return logits


def scored_pairs(tasks: int, objective: str) -> Tensor:
    """``[T, T]`` mask of (after task ``t``, queries of task ``s``) pairs an objective scores."""
    if objective not in OBJECTIVES:
        raise TaskError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    if objective == "acl":
        return torch.ones(tasks, tasks).tril().bool()
    return torch.eye(tasks, dtype=torch.bool)


def sequence_loss(logits: Tensor, query_labels: Tensor, objective: str) -> Tensor:
    """Mean cross-entropy over the scored (after, task) pairs."""
    tasks = logits.shape[1]
    after, task = torch.nonzero(scored_pairs(tasks, objective), as_tuple=True)
    chosen = logits[:, after, task]  # [B, pairs, Q, ways]
    return F.cross_entropy(chosen.flatten(0, 2), query_labels[:, task].flatten())


@dataclass(frozen=True)
class InContextConfig:
    """Settings of an in-context continual learner's meta-training: its objective, task shape and budget."""

    objective: str = "acl"
    ways: int = 5
    shots: int = 5
    queries: int = 5
    tasks: int = 2  # per training sequence (one for ``single``)
    hidden: int = 128
    layers: int = 2
    batch: int = 16
    steps: int = 20_000
    lr: float = 1e-3
    seed: int = 0


def meta_train_in_context(
    config: InContextConfig,
    features: Tensor,
    groups: Tensor,
    log: Callable[[str], object] = print,
    every: int = 500,
) -> InContextContinualLearner:
    """Meta-train on sequences drawn from ``features[class, example, dim]`` (tasks within ``groups``)."""
    torch.manual_seed(config.seed)
    model = InContextContinualLearner(features.shape[-1], config.ways, config.hidden, config.layers)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(3_000_017 + config.seed)
    tasks = 1 if config.objective == "single" else config.tasks
    recent: list[float] = []
    for step in range(1, config.steps + 1):
        classes = grouped_tasks(groups, config.batch, tasks, config.ways, generator)
        sequences = task_sequences(classes, features.shape[1], config.shots, config.queries, generator)
        context, labels, queries, query_labels = sequences.gather(features)
        loss = sequence_loss(model(context, labels, queries), query_labels, config.objective)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        recent.append(float(loss.detach()))
        if step % every == 0:
            log(f"{config.objective} step {step}: loss {sum(recent) / len(recent):.3f}")
            recent = []
    return model.eval()


def in_context_accuracy(model: InContextContinualLearner, features: Tensor, sequences: TaskSequences) -> Tensor:
    """Per-sequence accuracy ``[B, T, T]`` (after task ``t``, on task ``s``'s queries; NaN where ``s > t``)."""
    context, labels, queries, query_labels = sequences.gather(features)
    with torch.no_grad():
        logits = model(context, labels, queries)[..., : sequences.classes.shape[2]]  # a task's own label slots
    correct = (logits.argmax(-1) == query_labels[:, None]).float().mean(-1)
    tasks = logits.shape[1]
    return correct.masked_fill(~torch.ones(tasks, tasks).tril().bool(), float("nan"))


def online_accuracy(make: Callable[[], object], images: Tensor, sequences: TaskSequences) -> Tensor:
    """The same ``[B, T, T]`` accuracies for an online learner (``observe``/``predict``, one step per example)
    that sees each task's labelled examples once, in the sequence's order."""
    context, labels, queries, query_labels = sequences.gather(images)
    batch, tasks = labels.shape[:2]
    scores = torch.full((batch, tasks, tasks), float("nan"))
    for b in range(batch):
        learner = make()
        for t in range(tasks):
            for image, label in zip(context[b, t], labels[b, t]):
                learner.observe(image[None], label[None])  # type: ignore[attr-defined]
            for s in range(t + 1):
                predicted = learner.predict(queries[b, s])  # type: ignore[attr-defined]
                scores[b, t, s] = (predicted == query_labels[b, s]).float().mean()
    return scores
