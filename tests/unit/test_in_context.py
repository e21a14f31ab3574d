"""Task sequences for in-context continual learning: which examples, labels and orders they hold; the learner
reads tasks causally; objectives score the right (after, task) pairs; online learners are scored the same way."""

import pytest
import torch

from learntolearn.continual.in_context import (
    InContextContinualLearner,
    grouped_tasks,
    in_context_accuracy,
    online_accuracy,
    scored_pairs,
    sequence_loss,
    task_sequences,
)
from learntolearn.errors import TaskError

GROUPS = torch.tensor([0] * 6 + [1] * 7 + [2] * 3 + [3] * 5)


def coded(classes=21, per_class=20, dim=3):
    """data[c, e] = 100 c + e in every feature, so a gathered item names its class and example."""
    return (
        (100 * torch.arange(classes)[:, None, None] + torch.arange(per_class)[None, :, None])
        .float()
        .expand(classes, per_class, dim)
    )


def test_tasks_are_drawn_within_one_group_and_a_sequences_tasks_from_different_groups():
    classes = grouped_tasks(GROUPS, 50, 3, 5, torch.Generator().manual_seed(0))
    assert classes.shape == (50, 3, 5)
    task_groups = GROUPS[classes]
    assert (task_groups == task_groups[..., :1]).all()  # one group per task
    assert all(len(set(row[:, 0].tolist())) == 3 for row in task_groups)  # different groups per sequence
    assert (classes.sort(-1).values.diff(dim=-1) > 0).all()  # distinct classes within a task
    assert set(task_groups[..., 0].unique().tolist()) == {0, 1, 3}  # group 2 has too few classes for 5 ways
    with pytest.raises(TaskError, match="4 tasks of 5 classes need 4 groups"):
        grouped_tasks(GROUPS, 1, 4, 5, torch.Generator())


def test_gathered_context_and_queries_carry_their_classes_labels_and_distinct_examples():
    classes = grouped_tasks(GROUPS, 8, 2, 5, torch.Generator().manual_seed(1))
    sequences = task_sequences(classes, 20, 3, 4, torch.Generator().manual_seed(2))
    context, labels, queries, query_labels = sequences.gather(coded())
    assert context.shape == (8, 2, 15, 3) and labels.shape == (8, 2, 15)
    assert queries.shape == (8, 2, 20, 3) and query_labels.shape == (8, 2, 20)
    for items, item_labels in ((context, labels), (queries, query_labels)):
        class_of = items[..., 0].div(100, rounding_mode="floor").long()
        assert (class_of == classes.gather(2, item_labels)).all()  # label w <-> the task's w-th class
        assert (item_labels.flatten().bincount() == item_labels.numel() // 5).all()
    seen = {(b, t, int(x)) for b in range(8) for t in range(2) for x in context[b, t, :, 0]}
    asked = {(b, t, int(x)) for b in range(8) for t in range(2) for x in queries[b, t, :, 0]}
    assert len(seen) == 8 * 2 * 15 and not seen & asked  # no example both shown and asked
    assert not (labels[:, :, :5] == torch.arange(5)).all()  # shown in a shuffled order
    with pytest.raises(TaskError, match="need 21 examples a class; 20 given"):
        task_sequences(classes, 20, 11, 10, torch.Generator())


def test_queries_after_a_task_depend_on_no_later_task():
    torch.manual_seed(0)
    model = InContextContinualLearner(3, 5, hidden=16, layers=2).eval()
    context, labels, queries = torch.randn(4, 3, 10, 3), torch.randint(5, (4, 3, 10)), torch.randn(4, 3, 6, 3)
    logits = model(context, labels, queries)
    assert logits.shape == (4, 3, 3, 6, 5)
    assert (logits[:, 0, 1:] == 0).all() and (logits[:, 1, 2:] == 0).all()
    changed = context.clone()
    changed[:, 2] += 1
    again = model(changed, labels, queries)
    torch.testing.assert_close(again[:, :2], logits[:, :2])
    assert not torch.allclose(again[:, 2], logits[:, 2])
    alone = model(context[:, :1], labels[:, :1], queries[:, :1])  # the first task read by itself
    torch.testing.assert_close(alone[:, 0, 0], logits[:, 0, 0])
    with pytest.raises(TaskError, match="label 5 exceeds"):
        model(context, labels + 1, queries)


def test_objectives_score_the_current_task_or_every_task_so_far():
    assert scored_pairs(3, "current").tolist() == torch.eye(3, dtype=torch.bool).tolist()
    assert scored_pairs(3, "acl").tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    with pytest.raises(TaskError, match="unknown objective 'all'"):
        scored_pairs(2, "all")
    logits = torch.zeros(2, 2, 2, 3, 4)
    logits[:, 1, 0] = 10 * torch.nn.functional.one_hot(torch.tensor(1), 4)  # A's queries after B: confident "1"
    labels = torch.zeros(2, 2, 3, dtype=torch.long)  # every query is labelled 0
    uniform = torch.tensor(4.0).log()
    torch.testing.assert_close(sequence_loss(logits, labels, "current"), uniform)
    wrong = torch.logsumexp(torch.tensor([10.0, 0, 0, 0]), 0)  # cross-entropy of the confident wrong answers
    torch.testing.assert_close(sequence_loss(logits, labels, "acl"), (2 * uniform + wrong) / 3)


class RecentClasses:
    """An online learner that knows the label of the last five classes it was shown (reads coded data)."""

    def __init__(self):
        self.labels = {}

    def observe(self, images, labels):
        self.labels[int(images[0, 0]) // 100] = int(labels[0])
        self.labels = dict(list(self.labels.items())[-5:])

    def predict(self, images):
        return torch.tensor([self.labels.get(int(x[0]) // 100, -1) for x in images])


def test_online_learners_are_scored_after_each_task_on_every_task_so_far():
    classes = grouped_tasks(GROUPS, 3, 2, 5, torch.Generator().manual_seed(3))
    sequences = task_sequences(classes, 20, 1, 2, torch.Generator().manual_seed(4))
    scores = online_accuracy(RecentClasses, coded(dim=1), sequences)
    assert scores.shape == (3, 2, 2) and scores[:, 0, 1].isnan().all()
    assert (scores[:, 0, 0] == 1).all() and (scores[:, 1, 1] == 1).all()
    assert (scores[:, 1, 0] == 0).all()  # the first task's classes were pushed out by the second's
    model_scores = in_context_accuracy(
        InContextContinualLearner(1, 5, hidden=8, layers=1).eval(), coded(dim=1), sequences
    )
    assert model_scores.shape == (3, 2, 2) and model_scores[:, 0, 1].isnan().all()
