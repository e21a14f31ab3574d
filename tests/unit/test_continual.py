"""Continual meta-learning: OML's meta-gradient through its online trajectory against a hand-unrolled reference,
online learners equal to torch.optim on the same network, ANML's gate gating learning, the protocol's split,
and errors naming the problem."""

import pytest
import torch
import torch.nn.functional as F

from learntolearn.continual.anml import ANMLConfig, anml_logits, init_anml, meta_training_fast
from learntolearn.continual.layers import reset_output_row
from learntolearn.continual.oml import FAST, OMLConfig, init_oml, oml_logits
from learntolearn.continual.stream import NearestMean, OnlineLearner, learn_stream, split_classes
from learntolearn.continual.trajectory import remembering_loss
from learntolearn.data.indexed import ImageClassDataset
from learntolearn.errors import DataError, TaskError


def tiny_oml(dtype=torch.float64):
    params = init_oml(OMLConfig(channels=3, hidden=6, classes=5), torch.Generator().manual_seed(0))
    return {n: v.to(dtype) for n, v in params.items()}


def images(count, seed, dtype=torch.float64):
    return torch.rand(count, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def hand_unrolled(params, trajectory, remember, lr, first_order):
    """The reference: explicit autograd.grad per image with create_graph, no shared helpers."""
    fast = {n: params[n] for n in FAST}
    for image, label in zip(*trajectory):
        loss = F.cross_entropy(oml_logits({**params, **fast}, image[None]), label[None])
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=not first_order)
        fast = {n: p - lr * g for (n, p), g in zip(fast.items(), grads)}
    x, y = torch.cat([trajectory[0], remember[0]]), torch.cat([trajectory[1], remember[1]])
    return F.cross_entropy(oml_logits({**params, **fast}, x), y)


@pytest.mark.parametrize("first_order", [False, True])
def test_omls_meta_gradient_equals_a_hand_unrolled_trajectory(first_order):
    params = {n: v.requires_grad_(True) for n, v in tiny_oml().items()}
    trajectory = (images(4, 1), torch.full((4,), 2))
    remember = (images(6, 2), torch.tensor([0, 1, 3, 4, 0, 1]))
    ours = remembering_loss(oml_logits, params, FAST, trajectory, remember, 0.5, first_order=first_order)
    reference = hand_unrolled(params, trajectory, remember, 0.5, first_order)
    assert torch.allclose(ours, reference, atol=1e-12)
    ours_grads = torch.autograd.grad(ours, list(params.values()), retain_graph=True)
    for a, b in zip(ours_grads, torch.autograd.grad(reference, list(params.values()))):
        assert torch.allclose(a, b, atol=1e-10)
    # the representation's meta-gradient comes only through the trajectory's effect on the remembering loss;
    # second order makes it differ from the first-order one
    if not first_order:
        fo = remembering_loss(oml_logits, params, FAST, trajectory, remember, 0.5, first_order=True)
        rln_second = ours_grads[list(params).index("rln.conv0.weight")]
        rln_first = torch.autograd.grad(fo, params["rln.conv0.weight"])[0]
        assert (rln_second - rln_first).abs().max() > 1e-8


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_online_learner_equals_torch_optim_on_the_same_network(optimizer):
    params = tiny_oml(torch.float32)
    start = {n: v.clone() for n, v in params.items()}
    stream = images(6, 3, torch.float32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    learner = OnlineLearner(oml_logits, params, FAST, lr=0.05, optimizer=optimizer)
    leaves = {n: v.clone().requires_grad_(n in FAST) for n, v in params.items()}
    fast = [leaves[n] for n in FAST]
    reference = torch.optim.SGD(fast, lr=0.05) if optimizer == "sgd" else torch.optim.Adam(fast, lr=0.05)
    for image, label in zip(stream, labels):
        learner.observe(image[None], label[None])
        reference.zero_grad()
        F.cross_entropy(oml_logits(leaves, image[None]), label[None]).backward()
        reference.step()
    for name, value in learner.params.items():
        assert torch.allclose(value, leaves[name].detach(), atol=1e-6), name
        if name not in FAST:
            assert torch.equal(value, params[name])  # the representation is frozen
    assert all(torch.equal(params[n], start[n]) for n in params)  # the start it was given is untouched


def test_anmls_gate_gates_learning():
    config = ANMLConfig(channels=8, nm_channels=2, classes=4)
    params = init_anml(config, torch.Generator().manual_seed(0))
    assert set(meta_training_fast(params)) == {n for n in params if n.startswith("pred.")}
    closed = {**params, "nm.gate.bias": torch.full_like(params["nm.gate.bias"], -40.0)}  # gate ~ 0
    learner = OnlineLearner(anml_logits, closed, ("pred.fc.weight",), lr=1.0)
    learner.observe(images(1, 4, torch.float32), torch.tensor([1]))
    assert torch.allclose(learner.params["pred.fc.weight"], params["pred.fc.weight"], atol=1e-12)
    opened = OnlineLearner(anml_logits, params, ("pred.fc.weight",), lr=1.0)
    opened.observe(images(1, 4, torch.float32), torch.tensor([1]))
    assert (opened.params["pred.fc.weight"] - params["pred.fc.weight"]).abs().max() > 1e-4


def class_dataset(classes=4, per_class=20):
    pixels = torch.randint(0, 256, (classes * per_class, 1, 28, 28), generator=torch.Generator().manual_seed(5))
    offsets = torch.arange(0, classes * per_class + 1, per_class)
    return ImageClassDataset("toy", pixels.to(torch.uint8), offsets, tuple(f"c{i}" for i in range(classes)))


def test_the_split_holds_out_images_per_class_and_nearest_means_do_not_forget():
    split = split_classes(class_dataset(), train_per_class=15, seed=0)
    assert split.train.shape == (4, 15, 1, 28, 28) and split.held_out.shape == (4, 5, 1, 28, 28)
    assert split.train.max() <= 1 and split.train.min() >= 0
    learner = NearestMean(lambda x: x.flatten(1))
    scores = learn_stream(learner, split, torch.tensor([2, 0, 3]))
    assert scores["memorisation"] > 0.5 and set(learner.sums) == {0, 1, 2}
    before = learner.predict(split.train[2])
    learner.observe(split.train[1], torch.full((15,), 3))
    assert torch.equal(learner.predict(split.train[2]), before)  # a new class leaves the first one's answers
    with pytest.raises(DataError, match="class c0 has 20 images: none would be held out after 20"):
        split_classes(class_dataset(), train_per_class=20)


def test_bad_streams_are_named():
    learner = OnlineLearner(oml_logits, tiny_oml(torch.float32), FAST, lr=0.1)
    with pytest.raises(TaskError, match="label 5 is outside this learner's 5 outputs"):
        learner.observe(images(1, 6, torch.float32), torch.tensor([5]))
    bad = images(1, 6, torch.float32)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(TaskError, match="NaN or infinite pixels"):
        learner.observe(bad, torch.tensor([0]))
    with pytest.raises(TaskError, match="unknown online optimizer"):
        OnlineLearner(oml_logits, tiny_oml(torch.float32), FAST, lr=0.1, optimizer="lbfgs")
    with pytest.raises(TaskError, match=r"fast parameters \['pln.2.weight'\] are not among"):
        OnlineLearner(oml_logits, tiny_oml(torch.float32), ("pln.2.weight",), lr=0.1)


def test_resetting_a_class_row_redraws_only_that_row():
    params = tiny_oml(torch.float32)
    before = params["pln.1.weight"].clone()
    params["pln.1.bias"][3] = 1.0
    reset_output_row(params, "pln.1", 3, torch.Generator().manual_seed(9))
    changed = (params["pln.1.weight"] != before).any(1)
    assert changed.tolist() == [False, False, False, True, False] and params["pln.1.bias"][3] == 0


def test_meta_training_resumes_to_the_uninterrupted_run_and_refuses_other_settings(tmp_path):
    from dataclasses import replace

    from learntolearn.continual.runs import meta_train, preset
    from learntolearn.errors import LtlError

    def config(steps, **changes):
        base = preset("oml-omniglot", steps=steps)
        small = dict(channels=2, hidden=4, classes=6, trajectory=2, remember=3, checkpoint_every=1)
        return replace(base, **{**small, **changes})

    data = images(5 * 4, 8, torch.float32).reshape(5, 4, 1, 28, 28)
    straight = meta_train(config(3), data, tmp_path / "straight", log=lambda _: None)
    meta_train(config(1), data, tmp_path / "resumed", log=lambda _: None)
    lines = []
    resumed = meta_train(config(3), data, tmp_path / "resumed", log=lines.append)
    assert lines[0] == "resuming at step 1"
    assert all(torch.equal(straight[n], resumed[n]) for n in straight)
    with pytest.raises(LtlError, match="other settings"):
        meta_train(config(3, inner_lr=0.5), data, tmp_path / "resumed")
    with pytest.raises(LtlError, match="5 meta-training classes do not fit 4 outputs"):
        meta_train(config(3, classes=4), data, tmp_path / "other")


def test_a_runs_online_learner_starts_from_its_weights_with_a_fresh_output_layer(tmp_path):
    from dataclasses import replace

    from learntolearn.continual.runs import meta_train, online_learner, preset

    config = replace(preset("anml-omniglot", steps=2), channels=2, nm_channels=2, classes=6, trajectory=2, remember=3)
    trained = meta_train(config, images(5 * 4, 8, torch.float32).reshape(5, 4, 1, 28, 28), tmp_path, log=print)
    learner = online_learner(tmp_path, lr=0.1, outputs=3)
    output = [n for n in learner.params if n.endswith(".weight") and learner.params[n].shape[0] == 3]
    assert len(output) == 1 and not torch.equal(learner.params[output[0]], trained[output[0]][:3])
    assert all(torch.equal(learner.params[n], trained[n]) for n in trained if n.split(".")[0] == "nm")
    stream = images(4, 9, torch.float32)
    for image, label in zip(stream, [0, 1, 2, 1]):
        learner.observe(image[None], torch.tensor([label]))
    assert learner.steps == 4 and learner.predict(stream).shape == (4,)
    with pytest.raises(TaskError, match="label 3 is outside this learner's 3 outputs"):
        learner.observe(stream[:1], torch.tensor([3]))


def test_curves_score_fresh_learners_on_seeded_orders_and_rates_come_from_validation():
    from learntolearn.continual.stream import RATES, choose_rate, class_orders, continual_curves, deal

    split = deal(images(4 * 6, 10, torch.float32).reshape(4, 6, 1, 28, 28), 4, seed=0)
    assert split.train.shape == (4, 4, 1, 28, 28) and split.held_out.shape == (4, 2, 1, 28, 28)
    assert [o.tolist() for o in class_orders(4, 3, 2, seed=5)] == [o.tolist() for o in class_orders(4, 3, 2, seed=5)]
    with pytest.raises(TaskError, match="a stream of 5 classes needs that many; this split has 4"):
        class_orders(4, 5, 1, seed=0)
    made = []

    def make():
        made.append(NearestMean(lambda x: x.flatten(1)))
        return made[-1]

    curves = continual_curves(make, split, [2, 4], orders=3, seed=0)
    assert len(made) == 6 and [len(curves[c]["generalisation"]) for c in ("2", "4")] == [3, 3]
    assert curves["2"]["memorisation"] == [1.0, 1.0, 1.0]  # nearest means recall what they stored
    rate = choose_rate(lambda lr: OnlineLearner(oml_logits, tiny_oml(torch.float32), FAST, lr), split, 2, 1, seed=0)
    assert rate in RATES
