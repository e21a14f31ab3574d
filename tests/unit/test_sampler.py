import pytest
import torch

from learntolearn.data import EpisodeSampler, EpisodeSet, ImageClassDataset
from learntolearn.data.synthetic import load_synthetic


@pytest.fixture(scope="module")
def data():
    return load_synthetic(subset="train", image_size=8)


def uneven() -> ImageClassDataset:
    per_class = [torch.full((n, 1, 2, 2), c, dtype=torch.uint8) for c, n in enumerate([3, 7, 5])]
    return ImageClassDataset.from_class_tensors("uneven", per_class, ["a", "b", "c"])


def test_episode_shapes_labels_and_class_ids(data):
    task = EpisodeSampler(data, ways=5, shots=2, queries=3, seed=0).sample()
    assert task.support_x.shape == (10, 1, 8, 8) and task.query_x.shape == (15, 1, 8, 8)
    assert task.support_x.dtype == torch.float32 and 0 <= task.support_x.min() and task.support_x.max() <= 1
    assert task.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert task.query_y.tolist() == [c for c in range(5) for _ in range(3)]
    assert task.ways == 5 and len(set(task.class_ids.tolist())) == 5


def test_images_come_from_the_named_class_and_support_and_query_are_disjoint():
    data = uneven()
    labels_of_rows = data.images[:, 0, 0, 0]
    sampler = EpisodeSampler(data, ways=3, shots=1, queries=2, seed=3)
    for _ in range(50):
        task = sampler.sample()
        values = (task.support_x[:, 0, 0, 0] * 255).round().long()
        assert torch.equal(values, task.class_ids[task.support_y])
        qvalues = (task.query_x[:, 0, 0, 0] * 255).round().long()
        assert torch.equal(qvalues, task.class_ids[task.query_y])
    assert labels_of_rows.unique().tolist() == [0, 1, 2]


def test_no_image_is_drawn_twice_in_an_episode(data):
    from learntolearn.data.sampler import draw_plans

    classes, images = draw_plans(data, 5, 3, 7, 200, torch.Generator().manual_seed(0))
    flat = images.view(200, -1)
    assert all(len(set(row.tolist())) == row.numel() for row in flat)
    assert ((images >= data.offsets[classes].unsqueeze(-1)) & (images < data.offsets[classes + 1].unsqueeze(-1))).all()


def test_sampling_is_seeded_and_resumable(data):
    a, b, c = (EpisodeSampler(data, 5, 1, 5, seed=s, batch=4) for s in (1, 1, 2))
    first = [a.sample() for _ in range(6)]
    assert all(torch.equal(x.query_x, y.query_x) for x, y in zip(first, [b.sample() for _ in range(6)]))
    assert not torch.equal(first[0].class_ids, c.sample().class_ids)
    state = a.state_dict()
    expected = [a.sample().class_ids for _ in range(7)]
    resumed = EpisodeSampler(data, 5, 1, 5, seed=99, batch=4)
    resumed.load_state_dict(state)
    assert all(torch.equal(x, resumed.sample().class_ids) for x in expected)


def test_too_many_shots_and_queries_names_the_class_size():
    with pytest.raises(
        ValueError, match=r"5 shots \+ 0 queries = 5 images per class, but class 'a' of uneven has only 3"
    ):
        EpisodeSampler(uneven(), ways=2, shots=5, queries=0)


def test_more_ways_than_classes_is_an_error():
    with pytest.raises(ValueError, match="4-way episodes need 4 classes but uneven has only 3"):
        EpisodeSampler(uneven(), ways=4, shots=1, queries=1)


def test_fixed_episode_sets_are_reproducible_and_saved(tmp_path, data):
    episodes = EpisodeSet.generate(data, 5, 1, 3, count=20, seed=7)
    again = EpisodeSet.generate(data, 5, 1, 3, count=20, seed=7)
    assert torch.equal(episodes.images, again.images)
    episodes.save(tmp_path / "e.pt")
    loaded = EpisodeSet.load(tmp_path / "e.pt")
    tasks = list(loaded.tasks(data))
    assert len(tasks) == 20 and torch.equal(tasks[3].query_x, list(episodes.tasks(data))[3].query_x)
    with pytest.raises(ValueError, match="drawn from synthetic/default/train"):
        next(loaded.tasks(uneven()))
