"""The novelty test: a threshold from the support set by leave-one-out, and what it rejects."""

import pytest
import torch
import torch.nn.functional as F

from learntolearn.engine.novelty import NoveltyTest, leave_one_out_similarities, unit_vectors
from learntolearn.errors import TaskError


def clusters(shots: int, generator: torch.Generator, spread: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight clusters in the first three dimensions of a 6-d space, ``shots`` points each; like real
    embeddings, the classes share a common component (so different classes are somewhat similar)."""
    centres = torch.eye(6)[:3] * 4 + torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    points = centres.repeat_interleave(shots, 0) + spread * torch.randn(3 * shots, 6, generator=generator)
    return points, torch.arange(3).repeat_interleave(shots)


def test_leave_one_out_compares_each_example_with_the_means_of_the_others():
    x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    got = leave_one_out_similarities(unit_vectors(x), y)
    # example 0: its class mean without it is example 1; class 1's mean is example 2
    want0 = max(F.cosine_similarity(x[0], x[1], dim=0), F.cosine_similarity(x[0], x[2], dim=0))
    # example 2 is the only one of its class: only class 0's mean (of examples 0 and 1) is left
    mean0 = F.normalize(F.normalize(x[0], dim=0) + F.normalize(x[1], dim=0), dim=0)
    torch.testing.assert_close(got[0], want0)
    torch.testing.assert_close(got[2], F.cosine_similarity(x[2], mean0, dim=0))
    assert NoveltyTest.fit(x, y).threshold == pytest.approx(float(got.min()))


@pytest.mark.parametrize("shots", [1, 5])
def test_queries_like_a_class_pass_and_queries_like_none_are_novel(shots):
    g = torch.Generator().manual_seed(0)
    support_x, support_y = clusters(shots, g)
    test = NoveltyTest.fit(support_x, support_y)
    in_scope, _ = clusters(10, g)
    unlike = torch.eye(6)[3:] * 5 + 0.1 * torch.randn(3, 6, generator=g)  # the three other dimensions
    assert not test.is_novel(test.similarity(in_scope)).any()
    assert test.is_novel(test.similarity(unlike)).all()
    assert test.is_novel(test.similarity(torch.zeros(1, 6))).all(), "an all-zero embedding is like nothing"


def test_one_class_cannot_calibrate_a_threshold():
    with pytest.raises(TaskError, match="at least 2 classes"):
        NoveltyTest.fit(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
