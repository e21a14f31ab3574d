"""Meta-Dataset's episodes of variable ways and imbalanced shots."""

import pytest
import torch

from learntolearn.data.indexed import ImageClassDataset
from learntolearn.data.variable_episodes import EpisodeShape, VariableEpisodeSet, draw_variable_plan


def dataset(sizes):
    per_class = [torch.full((n, 1, 2, 2), i, dtype=torch.uint8) for i, n in enumerate(sizes)]
    return ImageClassDataset.from_class_tensors("toy", per_class, [f"c{i}" for i in range(len(sizes))])


def test_episodes_follow_meta_datasets_limits_and_never_share_an_image():
    data = dataset([6 + (7 * i) % 300 for i in range(80)])  # class sizes from 6 to 300
    shape = EpisodeShape()
    generator = torch.Generator().manual_seed(0)
    ways_seen = []
    for _ in range(200):
        plan = draw_variable_plan(data, shape, generator)
        ways, sizes = len(plan.classes), data.counts[plan.classes]
        ways_seen.append(ways)
        assert 5 <= ways <= 50 and len(set(plan.classes.tolist())) == ways
        queries = {len(q) for q in plan.query}
        assert queries == {min(10, int(sizes.min()) // 2)}
        assert all(k >= 1 for k in plan.shots) and sum(plan.shots) <= 500
        assert all(k + len(q) <= n for k, q, n in zip(plan.shots, plan.query, sizes.tolist()))
        task = plan.task(data)
        rows = torch.cat([*plan.support, *plan.query])
        assert len(rows.unique()) == len(rows), "an image is both support and query, or twice"
        expected = data.images[rows].float().flatten(1)[:, 0] / 255
        assert torch.equal(torch.cat([task.support_x, task.query_x]).flatten(1)[:, 0], expected)
        labels = torch.cat([task.support_y, task.query_y])
        assert torch.equal(plan.classes[labels], (expected * 255).round().long()), "labels name the right classes"
    assert min(ways_seen) < 10 and max(ways_seen) > 40, "ways are drawn over the whole range"


def test_shots_are_imbalanced_in_proportion_to_class_sizes():
    data = dataset([20] * 5 + [400] * 5)
    generator = torch.Generator().manual_seed(1)
    small, large = [], []
    for _ in range(300):
        plan = draw_variable_plan(data, EpisodeShape(max_ways=10), generator)
        for c, k in zip(plan.classes.tolist(), plan.shots):
            (small if c < 5 else large).append(k)
    assert sum(large) / len(large) > 5 * sum(small) / len(small)


def test_the_same_seed_gives_the_same_episodes_and_too_few_classes_is_an_error():
    data = dataset([30] * 12)
    first, second = VariableEpisodeSet(data, 5, seed=3), VariableEpisodeSet(data, 5, seed=3)
    for a, b in zip(first.plans, second.plans):
        assert torch.equal(a.classes, b.classes) and all(torch.equal(x, y) for x, y in zip(a.support, b.support))
    with pytest.raises(ValueError, match="toy has 4 classes; episodes need at least 5"):
        VariableEpisodeSet(dataset([30] * 4), 1, seed=0)
