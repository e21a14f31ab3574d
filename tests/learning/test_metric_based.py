"""Matching, Relation and Siamese networks, the recurrent learner and the Chen et al. baselines: semantics,
errors, learning."""

import pytest
import torch
import torch.nn.functional as F
from helpers import meta_train
from torch import nn

from learntolearn.algorithms import (
    CosineBaseline,
    FineTuning,
    LinearBaseline,
    MatchingNetworks,
    RecurrentLearner,
    RelationNetworks,
    SiameseNetworks,
)
from learntolearn.data import EpisodeSampler, EpisodeSet
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.evaluate import evaluate
from learntolearn.nn.backbones import conv4, conv4_maps
from learntolearn.testing import point_task


def test_matching_networks_attend_with_a_softmax_over_cosine_similarities():
    model = MatchingNetworks(nn.Identity())
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    adapted = model.adapt(support, torch.tensor([0, 1, 1]))
    query = torch.tensor([[2.0, 0.0]])
    cos = torch.tensor([1.0, 0.0, 2**-0.5])
    attention = torch.softmax(cos, 0)
    expected = torch.log(torch.stack([attention[0], attention[1] + attention[2]]))
    torch.testing.assert_close(model.predict(adapted, query)[0], expected)


@pytest.mark.parametrize("distance", ["scaled-cosine", "euclidean"])
def test_matching_networks_other_attention_kernels(distance):
    model = MatchingNetworks(nn.Identity(), distance=distance)
    support, query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([[2.0, 0.0]])
    if distance == "scaled-cosine":
        assert [n for n, _ in model.named_parameters()] == ["scale"] and model.scale.item() == 10.0
        similarity = 10.0 * torch.tensor([1.0, 0.0, 2**-0.5])
    else:
        similarity = -torch.tensor([1.0, 5.0, 2.0])
    attention = torch.softmax(similarity, 0)
    expected = torch.log(torch.stack([attention[0], attention[1] + attention[2]]))
    torch.testing.assert_close(model.predict(model.adapt(support, torch.tensor([0, 1, 1])), query)[0], expected)
    with pytest.raises(ValueError, match="unknown distance 'manhattan'"):
        MatchingNetworks(nn.Identity(), distance="manhattan")


def test_matching_full_context_embeddings_condition_queries_on_the_support_set():
    torch.manual_seed(0)
    model = MatchingNetworks(nn.Flatten(), embedding_dim=4, full_context=True)
    x, y = torch.randn(6, 4), torch.arange(3).repeat_interleave(2)
    query = torch.randn(2, 4)
    a = model.predict(model.adapt(x, y), query)
    b = model.predict(model.adapt(x.flip(0), y.flip(0)), query)
    assert a.shape == (2, 3) and torch.allclose(a.exp().sum(-1), torch.ones(2))
    assert not torch.allclose(a, b), "the bidirectional LSTM makes embeddings depend on the support set"


def test_relation_sums_support_maps_per_class_and_regresses_one_hot_targets():
    torch.manual_seed(0)
    model = RelationNetworks(conv4_maps(), (64, 5, 5))
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 0, 1, 1])
    model.eval()
    maps = model.backbone(x)
    scores = model.predict(model.adapt(x, y), x[:3])
    sums = torch.stack([maps[:2].sum(0), maps[2:].sum(0)])
    pairs = torch.cat([sums.unsqueeze(0).expand(3, -1, -1, -1, -1), maps[:3].unsqueeze(1).expand(-1, 2, -1, -1, -1)], 2)
    torch.testing.assert_close(scores, model.relation(pairs.flatten(0, 1)).view(3, 2))
    assert scores.shape == (3, 2) and ((scores >= 0) & (scores <= 1)).all()
    torch.testing.assert_close(
        model.query_loss(scores, torch.tensor([0, 1, 1])),
        F.mse_loss(scores, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])),
    )


def test_relation_networks_name_the_backbone_they_need():
    with pytest.raises(ValueError, match="feature maps.*conv4-maps"):
        RelationNetworks(conv4(), (64,))


def test_siamese_scores_a_class_by_its_most_similar_support_image():
    model = SiameseNetworks(nn.Identity(), 2)
    with torch.no_grad():
        model.weighted_l1.weight.fill_(-1.0)
        model.weighted_l1.bias.zero_()
    support = torch.tensor([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
    logits = model.predict(model.adapt(support, torch.tensor([0, 0, 1])), torch.tensor([[4.0, 4.0]]))
    torch.testing.assert_close(logits, torch.tensor([[-2.0, -6.0]]))


def test_baseline_trains_on_global_class_ids_and_fits_a_new_head_per_task():
    torch.manual_seed(0)
    train = load_synthetic(subset="train")
    model = LinearBaseline(nn.Flatten(), 256, train.n_classes)
    task = EpisodeSampler(train, 5, 1, 3, seed=0).sample()
    out = model.meta_loss([task])
    x = torch.cat([task.support_x, task.query_x])
    y = torch.cat([task.class_ids[task.support_y], task.class_ids[task.query_y]])
    torch.testing.assert_close(out.loss, F.cross_entropy(model.classifier(model.backbone(x)), y))
    model.eval()
    before = [p.clone() for p in model.parameters()]
    head, backbone = model.adapt(task.support_x, task.support_y)
    assert head.weight.shape == (5, 256) and backbone is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "adaptation must not touch the model"
    logits = model.predict((head, backbone), task.support_x)
    assert (logits.argmax(-1) == task.support_y).all(), "100 SGD steps fit 5 support examples"


def test_fine_tuning_adapts_a_copy_of_the_backbone():
    torch.manual_seed(0)
    train = load_synthetic(subset="train")
    model = FineTuning(nn.Sequential(nn.Flatten(), nn.Linear(256, 8)), 8, train.n_classes)
    task = EpisodeSampler(train, 5, 1, 3, seed=0).sample()
    model.eval()
    before = {n: p.clone() for n, p in model.backbone.named_parameters()}
    head, backbone = model.adapt(task.support_x, task.support_y)
    assert set(backbone) == set(before) and any(not torch.equal(backbone[n], before[n]) for n in before)
    assert all(torch.equal(p, before[n]) for n, p in model.backbone.named_parameters())
    assert model.predict((head, backbone), task.query_x).shape == (15, 5)


LEARNERS = {
    "matching": lambda classes: MatchingNetworks(conv4(hidden=32, out_channels=32)),
    "matching-scaled": lambda classes: MatchingNetworks(conv4(hidden=32, out_channels=32), distance="scaled-cosine"),
    "matching-fce": lambda classes: MatchingNetworks(conv4(hidden=32, out_channels=32), 32, full_context=True),
    "relation": lambda classes: RelationNetworks(conv4_maps(hidden=32), (32, 5, 5)),
    "siamese": lambda classes: SiameseNetworks(conv4(hidden=32, out_channels=32), 32),
    "baseline": lambda classes: LinearBaseline(conv4(hidden=32, out_channels=32), 32, classes),
    "baseline++": lambda classes: CosineBaseline(conv4(hidden=32, out_channels=32), 32, classes),
}
SIZE = {"relation": 28}


@pytest.mark.slow
@pytest.mark.parametrize("name", LEARNERS)
def test_learns_5way_1shot_glyphs(name):
    """150 training episodes lift 5-way 1-shot accuracy on unseen glyphs clearly above the untrained model."""
    torch.manual_seed(0)
    size = SIZE.get(name, 16)
    train, test = load_synthetic(subset="train", image_size=size), load_synthetic(subset="test", image_size=size)
    model = LEARNERS[name](train.n_classes)
    episodes = EpisodeSet.generate(test, 5, 1, 5, count=40, seed=0)
    before = evaluate(model, episodes.tasks(test), progress=False).mean
    sampler = EpisodeSampler(train, 10, 1, 5, seed=0)
    meta_train(model, lambda: [sampler.sample()], 150, torch.optim.Adam(model.parameters(), lr=1e-3))
    after = evaluate(model, episodes.tasks(test), progress=False).mean
    assert after > before + 0.15 and after > 0.6, (before, after)


@pytest.mark.parametrize("sequence_model", ["lstm", "transformer"])
def test_recurrent_learner_predicts_each_query_independently_and_refuses_too_many_ways(sequence_model):
    torch.manual_seed(0)
    model = RecurrentLearner(nn.Flatten(), 6, max_ways=3, sequence_model=sequence_model, hidden=16).eval()
    support, labels, queries = torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2]), torch.randn(5, 6)
    adapted = model.adapt(support, labels)
    together = model.predict(adapted, queries)
    alone = torch.cat([model.predict(adapted, queries[i : i + 1]) for i in range(5)])
    assert together.shape == (5, 3)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    relabelled = model.predict(model.adapt(support, torch.tensor([1, 1, 0, 0, 2, 2])), queries)
    assert not torch.allclose(relabelled, together), "predictions depend on the support labels (in-context learning)"
    with pytest.raises(ValueError, match="labels of up to 3 classes, but the task has 4"):
        model.predict(model.adapt(torch.randn(4, 6), torch.arange(4)), queries)


@pytest.mark.slow
@pytest.mark.parametrize("sequence_model, steps, target", [("transformer", 400, 0.9), ("lstm", 600, 0.4)])
def test_recurrent_learner_learns_in_context(sequence_model, steps, target):
    """With no gradient step at test time, the sequence model learns to label queries by their support
    point; the attention model in a few hundred episodes, the LSTM more slowly (chance is 0.2)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    test = [point_task(torch.Generator().manual_seed(1000 + i)) for i in range(50)]
    model = RecurrentLearner(nn.Flatten(), 8, max_ways=5, sequence_model=sequence_model, hidden=64)
    lr = 1e-3 if sequence_model == "transformer" else 3e-3
    meta_train(
        model, lambda: [point_task(generator) for _ in range(8)], steps, torch.optim.Adam(model.parameters(), lr=lr)
    )
    assert evaluate(model, test, progress=False).mean > target
