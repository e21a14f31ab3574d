import pytest
import torch
from helpers import meta_train
from torch import nn

from learntolearn.algorithms import Algorithm, PrototypicalNetworks
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.nn.backbones import conv4, mlp
from learntolearn.nn.distances import prototypes, squared_euclidean
from learntolearn.testing import random_task
from learntolearn.types import Task


def linear_protonet(dtype=torch.float32) -> PrototypicalNetworks:
    return PrototypicalNetworks(nn.Sequential(nn.Flatten(), nn.Linear(6, 4))).to(dtype)


def test_prototypes_are_class_means_and_logits_negative_squared_distances():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [1.0, 3.0]])
    protos = prototypes(z, torch.tensor([0, 0, 1, 1]), 2)
    assert torch.equal(protos, torch.tensor([[1.0, 0.0], [1.0, 2.0]]))
    q = torch.tensor([[1.0, 1.0], [3.0, 0.0]])
    assert torch.allclose(squared_euclidean(q, protos), torch.tensor([[1.0, 1.0], [4.0, 8.0]]))


def test_batched_meta_loss_equals_the_adapt_predict_path():
    model = linear_protonet()
    tasks = [random_task(), random_task(ways=4, shots=1)]
    batched = PrototypicalNetworks.meta_loss(model, tasks)
    generic = Algorithm.meta_loss(model, tasks)
    assert torch.allclose(batched.loss, generic.loss) and batched.accuracy == generic.accuracy


def test_meta_gradient_matches_finite_differences():
    """The episode loss's gradient w.r.t. the embedding weights passes float64 gradcheck."""
    model = linear_protonet(torch.float64)
    task = random_task(dtype=torch.float64)
    bias = model.backbone[1].bias

    def episode_loss(weight):
        params = {"1.weight": weight, "1.bias": bias}
        embed = lambda x: torch.func.functional_call(model.backbone, params, (x,))
        protos = prototypes(embed(task.support_x), task.support_y, task.ways)
        return torch.nn.functional.cross_entropy(-squared_euclidean(embed(task.query_x), protos), task.query_y)

    weight = model.backbone[1].weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(episode_loss, (weight,), eps=1e-6, atol=1e-8, rtol=1e-6)
    model.zero_grad()
    model.meta_loss([task]).loss.backward()
    assert torch.allclose(model.backbone[1].weight.grad, torch.autograd.grad(episode_loss(weight), weight)[0])


def test_bad_support_labels_are_rejected_with_the_reason():
    model = linear_protonet()
    x = torch.randn(4, 6)
    with pytest.raises(ValueError, match=r"no support example for class \[1\]"):
        model.adapt(x, torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="must be 0..N-1"):
        model.adapt(x, torch.tensor([1, 1, 2, 2]))
    with pytest.raises(ValueError, match="integer class indices"):
        model.adapt(x, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="one label per support example"):
        model.adapt(x, torch.tensor([0, 1]))


def test_mismatched_support_and_query_shapes_are_rejected():
    task = random_task()
    bad = Task(task.support_x, task.support_y, torch.randn(6, 7), task.query_y, task.class_ids)
    with pytest.raises(ValueError, match=r"support and query inputs differ in shape: \(6,\) vs \(7,\)"):
        linear_protonet().meta_loss([bad])


def test_backbone_without_flat_output_is_rejected():
    model = PrototypicalNetworks(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"flat embeddings of shape \(batch, dim\).*nn.Flatten"):
        model.adapt(torch.randn(2, 1, 5, 5), torch.tensor([0, 1]))


def test_conv4_embeds_28x28_omniglot_images_into_64_dimensions():
    assert conv4()(torch.randn(3, 1, 28, 28)).shape == (3, 64)
    assert mlp(1, (40, 40), 1)(torch.randn(5, 1)).shape == (5, 1)


def test_protonet_learns_a_tiny_task_distribution():
    """150 training episodes lift 5-way 1-shot accuracy on unseen glyphs far above untrained and raw pixels."""
    from learntolearn.data import EpisodeSet
    from learntolearn.engine.evaluate import evaluate

    train, test = load_synthetic(subset="train", image_size=16), load_synthetic(subset="test", image_size=16)
    model = PrototypicalNetworks(conv4(hidden=32, out_channels=32))
    episodes = EpisodeSet.generate(test, 5, 1, 5, count=100, seed=0)
    before = evaluate(model, episodes.tasks(test), progress=False).mean
    raw = evaluate(PrototypicalNetworks(nn.Flatten()), episodes.tasks(test), progress=False).mean
    sampler = EpisodeSampler(train, 10, 1, 5, seed=0)
    meta_train(model, lambda: [sampler.sample()], 150, torch.optim.Adam(model.parameters(), lr=1e-3))
    after = evaluate(model, episodes.tasks(test), progress=False).mean
    assert after > 0.82 and after > before + 0.25 and after > raw + 0.1, (before, raw, after)
