"""In-context continual learning: meta-trained with ACL's objective, the recurrent learner still classifies the
first task of a toy sequence after learning the second in context; meta-trained on the current task only, it
forgets it (in-context catastrophic forgetting)."""

import torch

from learntolearn.continual.in_context import (
    InContextConfig,
    grouped_tasks,
    in_context_accuracy,
    meta_train_in_context,
    task_sequences,
)


def blobs(classes, per_class, dim, seed):
    """Each class a random centre; its examples that centre with small noise."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 1, dim, generator=generator)
    return centres + 0.3 * torch.randn(classes, per_class, dim, generator=generator)


def test_acl_remembers_the_first_task_where_current_task_training_forgets_it():
    train, held = blobs(60, 10, 8, seed=0), blobs(30, 10, 8, seed=1)
    groups = torch.arange(60) // 5
    classes = grouped_tasks(torch.arange(30) // 5, 100, 2, 2, torch.Generator().manual_seed(5))
    sequences = task_sequences(classes, 10, 2, 2, torch.Generator().manual_seed(6))
    scores = {}
    for objective in ("current", "acl"):
        config = InContextConfig(objective, ways=2, shots=2, queries=2, hidden=32, layers=1, steps=500, lr=3e-3)
        model = meta_train_in_context(config, train, groups, log=lambda _: None)
        scores[objective] = in_context_accuracy(model, held, sequences).nanmean(0)
    assert scores["current"][0, 0] > 0.8 and scores["current"][1, 1] > 0.8  # it learns each task in context ...
    assert scores["current"][1, 0] < 0.65  # ... and forgets the first (chance is 0.5)
    assert scores["acl"][1, 0] > scores["current"][1, 0] + 0.15, scores
