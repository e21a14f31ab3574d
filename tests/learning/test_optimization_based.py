"""ANIL, Meta-SGD and Reptile: gradients against references, bad input, and learning tiny distributions."""

import pytest
import torch
import torch.nn.functional as F
from helpers import meta_train
from maml_reference import WAYS, meta_gradient, reference_meta_loss, tasks
from torch import nn

from learntolearn.algorithms import ALGORITHMS, ANIL, MAML, MetaSGD, Reptile
from learntolearn.data import EpisodeSampler, EpisodeSet
from learntolearn.data.sinusoid import SinusoidTasks
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import evaluate
from learntolearn.nn.backbones import conv4, conv4_strided, mlp


def body_and_head():
    return (nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh()).double(), nn.Linear(5, WAYS).double())


@pytest.mark.parametrize("batched", [False, True])
def test_anil_meta_gradient_equals_maml_restricted_to_the_head(batched):
    torch.manual_seed(0)
    body, head = body_and_head()
    anil = ANIL(body, head, inner_lr=0.3, inner_steps=2, batched=batched)
    batch = tasks()
    names = [n for n, _ in anil.model.named_parameters()]
    params = list(anil.model.parameters())

    def reference():
        losses = []
        for task in batch:
            fast = dict(zip(names, params))
            for _ in range(2):
                head_params = [fast[n] for n in names if n.startswith("head.")]
                loss = F.cross_entropy(torch.func.functional_call(anil.model, fast, (task.support_x,)), task.support_y)
                grads = torch.autograd.grad(loss, head_params, create_graph=True)
                fast.update({n: fast[n] - 0.3 * g for n, g in zip([n for n in names if n.startswith("head.")], grads)})
            losses.append(F.cross_entropy(torch.func.functional_call(anil.model, fast, (task.query_x,)), task.query_y))
        return torch.stack(losses).mean()

    expected = torch.autograd.grad(reference(), params)
    for got, want in zip(meta_gradient(anil, batch), expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_metasgd_with_uniform_rates_is_maml_and_its_rate_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    batch = tasks()
    meta_sgd = MetaSGD(model, inner_lr=0.3, inner_steps=2)
    params = list(meta_sgd.model.parameters())
    torch.testing.assert_close(meta_sgd.meta_loss(batch).loss, reference_meta_loss(model, params, batch, 0.3, 2))
    meta_sgd.zero_grad()
    meta_sgd.meta_loss(batch).loss.backward()
    rate = meta_sgd.rates[0]
    for coordinate in (0, 7):
        with torch.no_grad():
            rate.view(-1)[coordinate] += 1e-6
            plus = meta_sgd.meta_loss(batch).loss.item()
            rate.view(-1)[coordinate] -= 2e-6
            minus = meta_sgd.meta_loss(batch).loss.item()
            rate.view(-1)[coordinate] += 1e-6
        assert rate.grad.view(-1)[coordinate].item() == pytest.approx((plus - minus) / 2e-6, rel=1e-5, abs=1e-9)


def test_reptile_gradient_is_theta_minus_mean_adapted_theta():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    batch = tasks()
    reptile = Reptile(model, inner_lr=0.1, inner_steps=3)
    reptile.zero_grad()
    reptile.meta_loss(batch).loss.backward()
    adapted = []
    for task in batch:
        copy = [p.detach().clone().requires_grad_() for p in model.parameters()]
        sgd = torch.optim.SGD(copy, lr=0.1)
        for _ in range(3):
            names = [n for n, _ in model.named_parameters()]
            loss = F.cross_entropy(
                torch.func.functional_call(model, dict(zip(names, copy)), (task.support_x,)), task.support_y
            )
            sgd.zero_grad()
            loss.backward()
            sgd.step()
        adapted.append(copy)
    for i, p in enumerate(model.parameters()):
        expected = p.detach() - torch.stack([a[i].detach() for a in adapted]).mean(0)
        torch.testing.assert_close(p.grad, expected)


@pytest.mark.parametrize(
    "lr, steps, message",
    [
        (0.0, 1, "inner learning rate must be in"),
        (float("nan"), 1, "inner learning rate"),
        (0.1, 0, "inner_steps must be an integer in"),
    ],
)
def test_inner_settings_out_of_range_are_rejected(lr, steps, message):
    with pytest.raises(ValueError, match=message):
        MAML(nn.Linear(2, 2), inner_lr=lr, inner_steps=steps)


def test_a_diverging_inner_loop_names_the_step():
    model = nn.Sequential(nn.Linear(4, WAYS)).double()
    task = tasks(count=1)[0]
    with torch.no_grad():
        model[0].weight.fill_(1e308)
    with pytest.raises(FloatingPointError, match="inner-loop loss became .* at inner step 1"):
        MAML(model, inner_lr=0.5).adapt(task.support_x, task.support_y)


def test_wrong_head_size_is_named():
    task = tasks(count=1)[0]
    with pytest.raises(ValueError, match="outputs 7 logits but the task has 3 ways"):
        MAML(nn.Linear(4, 7).double()).adapt(task.support_x, task.support_y)


def test_vmapped_maml_runs_on_the_registered_channels_last_backbones():
    torch.manual_seed(0)
    batch = [EpisodeSampler(load_synthetic(subset="train", image_size=28), 5, 1, 2, seed=0).sample() for _ in range(3)]
    loop = MAML(nn.Sequential(conv4_strided(hidden=8), nn.Linear(8, 5)), inner_lr=0.4)
    expected = loop.meta_loss(batch).loss
    vmapped = MAML(loop.model, inner_lr=0.4, batched=True)
    torch.testing.assert_close(vmapped.meta_loss(batch).loss, expected, rtol=1e-4, atol=1e-5)


def test_reptile_inner_minibatches_are_shuffled_passes_over_the_support_set():
    """Reptile's Omniglot setting: each inner step sees ``inner_batch`` examples; 3 steps of 2 cover 6 once."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    task = tasks(count=1)[0]  # 3 ways x 2 shots
    seen = []
    hook = model[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    reptile = Reptile(model, inner_lr=0.1, inner_steps=3, inner_batch=2)
    fast = reptile.adapt(task.support_x, task.support_y)
    hook.remove()
    assert [len(batch) for batch in seen] == [2, 2, 2]
    rows = {tuple(row.tolist()) for batch in seen for row in batch}
    assert rows == {tuple(row.tolist()) for row in task.support_x}, "one pass visits every support example once"
    expected = {n: p.detach().requires_grad_() for n, p in model.named_parameters()}
    for batch in seen:  # the same SGD steps, replayed on the batches the hook saw
        index = [next(i for i, row in enumerate(task.support_x) if torch.equal(row, x)) for x in batch]
        loss = F.cross_entropy(torch.func.functional_call(model, expected, (batch,)), task.support_y[index])
        grads = torch.autograd.grad(loss, list(expected.values()))
        expected = {n: (p - 0.1 * g).detach().requires_grad_() for (n, p), g in zip(expected.items(), grads)}
    for name in expected:
        torch.testing.assert_close(fast[name], expected[name])
    seen.clear()
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    Reptile(model, inner_lr=0.1, inner_steps=2, inner_batch=10).adapt(task.support_x, task.support_y)
    assert [len(batch) for batch in seen] == [6, 6], "a support set no larger than inner_batch is used whole"
    seen.clear()
    evaluated = Reptile(model, inner_lr=0.1, inner_steps=3, inner_batch=2, test_inner_batch=4).eval()
    evaluated.adapt(task.support_x, task.support_y)
    assert [len(batch) for batch in seen] == [4, 4, 4], "evaluation draws test_inner_batch examples per step"
    seen.clear()
    evaluated.train().adapt(task.support_x, task.support_y)
    assert [len(batch) for batch in seen] == [2, 2, 2], "training keeps inner_batch"


def test_reptile_test_adaptation_depends_on_the_episode_alone():
    """Minibatched test-time adaptation draws its minibatches from a fixed seed: an episode's adapted weights
    do not depend on the global generator or on the episodes adapted before it; training keeps drawing."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    first, second = tasks(count=2)
    reptile = Reptile(model, inner_lr=0.1, inner_steps=3, test_inner_batch=2).eval()
    torch.manual_seed(1)
    alone = reptile.adapt(first.support_x, first.support_y)
    torch.manual_seed(2)
    reptile.adapt(second.support_x, second.support_y)
    after_another = reptile.adapt(first.support_x, first.support_y)
    for name in alone:
        torch.testing.assert_close(after_another[name], alone[name], rtol=0, atol=0)
    reptile.train()
    reptile.inner_batch = 2
    drawn = [reptile.adapt(first.support_x, first.support_y) for _ in range(2)]
    assert any(not torch.equal(drawn[0][n], drawn[1][n]) for n in drawn[0]), "training minibatches are drawn afresh"


def test_momentumless_adam_step_equals_torch_adam_with_beta1_zero():
    """With eps = 0 Kingma & Ba's efficient form and torch.optim.Adam's coincide; the moments carry over."""
    from learntolearn.algorithms.inner import adam_step_no_momentum

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    batch = tasks(count=4)
    reference = [p.detach().clone().requires_grad_() for p in model.parameters()]
    adam = torch.optim.Adam(reference, lr=0.01, betas=(0.0, 0.999), eps=0.0)
    names = [n for n, _ in model.named_parameters()]
    fast = {n: p.detach() for n, p in model.named_parameters()}
    moments = {n: torch.zeros_like(p) for n, p in fast.items()}
    for count, task in enumerate(batch):
        adam.zero_grad()
        F.cross_entropy(
            torch.func.functional_call(model, dict(zip(names, reference)), (task.support_x,)), task.support_y
        ).backward()
        adam.step()
        fast, moments = adam_step_no_momentum(
            lambda p, t=task: F.cross_entropy(torch.func.functional_call(model, p, (t.support_x,)), t.support_y),
            fast,
            moments,
            count,
            0.01,
            eps=0.0,
        )
        for name, want in zip(names, reference):
            torch.testing.assert_close(fast[name], want.detach(), rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(moments[name], adam.state[want]["exp_avg_sq"], rtol=1e-12, atol=1e-16)


def test_reptile_adam_statistics_carry_across_training_tasks_and_not_test_tasks():
    """As in the authors' code: meta-training tasks update Adam's moments in turn; adaptation at test time
    starts from them and leaves them as they were."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double()
    batch = tasks(count=3)
    reptile = Reptile(model, inner_lr=0.01, inner_steps=2, inner_optimizer="adam").train()
    moment = "inner_adam_moment__0__weight"
    assert moment in reptile.state_dict() and "inner_adam_steps" in reptile.state_dict()
    first = reptile.adapt(batch[0].support_x, batch[0].support_y)
    after_one = getattr(reptile, moment).clone()
    assert after_one.abs().sum() > 0 and int(reptile.inner_adam_steps) == 2
    reptile.adapt(batch[1].support_x, batch[1].support_y)
    assert not torch.equal(getattr(reptile, moment), after_one) and int(reptile.inner_adam_steps) == 4
    fresh = Reptile(
        nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, WAYS)).double(),
        inner_lr=0.01,
        inner_steps=2,
        inner_optimizer="adam",
    )
    fresh.load_state_dict(reptile.state_dict())
    fresh.train().adapt(batch[2].support_x, batch[2].support_y)
    reptile.eval()
    saved = {k: v.clone() for k, v in reptile.state_dict().items()}
    reptile.adapt(batch[2].support_x, batch[2].support_y)
    assert all(torch.equal(v, reptile.state_dict()[k]) for k, v in saved.items())
    assert not torch.equal(fresh.state_dict()[moment], saved[moment]), "the checkpointed moments were used and updated"
    assert "inner_adam_steps" not in Reptile(nn.Linear(2, 2)).state_dict(), "SGD Reptile checkpoints keep their keys"
    assert not torch.equal(first["0.weight"], model[0].weight)


@pytest.mark.slow
def test_reptile_with_adam_learns_sinusoids():
    torch.manual_seed(0)
    reptile = Reptile(mlp(1, (40, 40), 1), inner_lr=0.01, inner_steps=10, loss="mse", inner_optimizer="adam")
    held_out = [task for task, _ in zip(SinusoidTasks(10, 50, seed=123), range(100))]
    before = sinusoid_mse(reptile, held_out)
    stream = SinusoidTasks(10, 10, seed=0)
    meta_train(reptile, lambda: [stream.sample() for _ in range(5)], 150, torch.optim.SGD(reptile.parameters(), lr=1.0))
    after = sinusoid_mse(reptile, held_out)
    assert after < 0.7 * before, (before, after)


def test_inner_optimizer_is_a_reptile_option_only():
    with pytest.raises(KeyError, match="maml has no setting 'inner_optimizer'"):
        TrainConfig.create(algorithm="maml", inner_optimizer="adam")
    with pytest.raises(ValueError, match="Reptile key 'inner_optimizer': unknown 'rmsprop'; valid: sgd, adam"):
        TrainConfig.create(algorithm="reptile", inner_optimizer="rmsprop")
    with pytest.raises(ValueError, match="'inner_optimizer': unknown 'rmsprop'"):
        Reptile(nn.Linear(2, 2), inner_optimizer="rmsprop")


def test_inner_batch_is_a_reptile_option_only():
    from learntolearn.engine.config import TrainConfig

    with pytest.raises(KeyError, match="maml has no setting 'inner_batch'"):
        TrainConfig.create(algorithm="maml", inner_batch=10)
    assert TrainConfig.create(algorithm="reptile", inner_batch=10, train_shots=10).episodes.train_shots == 10


@pytest.mark.parametrize("algorithm", ["reptile", "metalstm"])
@pytest.mark.parametrize("option", ["batched", "compiled", "first_order"])
def test_learners_without_vmap_or_compiled_paths_do_not_have_those_settings(algorithm, option):
    """Reptile and the meta-learner LSTM are not MAML: MAML's execution settings are not theirs to refuse."""
    with pytest.raises(KeyError, match=f"{algorithm} has no setting '{option}'"):
        TrainConfig.create(algorithm=algorithm, **{option: True})
    assert not issubclass(ALGORITHMS.get(algorithm), MAML)


def test_compiled_is_refused_for_algorithms_without_a_compiled_path():
    with pytest.raises(KeyError, match="protonet has no setting 'compiled'"):
        TrainConfig.create(algorithm="protonet", compiled=True)
    with pytest.raises(ValueError, match="multi_step_loss_steps needs the eager task loop"):
        MAML(nn.Linear(2, 2), compiled=True, multi_step_loss_steps=10)
    with pytest.raises(ValueError, match="choose batched or compiled"):
        MAML(nn.Linear(2, 2), compiled=True, batched=True)
    with pytest.raises(ValueError, match="tasks_per_graph must be >= 1, got 0"):
        MAML(nn.Linear(2, 2), compiled=True, tasks_per_graph=0)


def sinusoid_mse(algorithm, tasks_):
    algorithm.eval()
    return sum(
        F.mse_loss(algorithm.predict(algorithm.adapt(t.support_x, t.support_y), t.query_x), t.query_y).item()
        for t in tasks_
    ) / len(tasks_)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, optimizer, lr, steps",
    [
        (lambda: MAML(mlp(1, (40, 40), 1), inner_lr=0.01, loss="mse"), torch.optim.Adam, 3e-3, 600),
        (lambda: MAML(mlp(1, (40, 40), 1), inner_lr=0.01, loss="mse", first_order=True), torch.optim.Adam, 3e-3, 600),
        (lambda: MetaSGD(mlp(1, (40, 40), 1), inner_lr=0.01, loss="mse"), torch.optim.Adam, 3e-3, 600),
        (lambda: Reptile(mlp(1, (40, 40), 1), inner_lr=0.02, inner_steps=10, loss="mse"), torch.optim.SGD, 1.0, 150),
        (
            lambda: MAML(
                mlp(1, (40, 40), 1),
                inner_lr=0.01,
                inner_steps=2,
                loss="mse",
                per_step_rates=True,
                multi_step_loss_steps=300,
            ),
            torch.optim.Adam,
            3e-3,
            600,
        ),
    ],
    ids=["maml", "fomaml", "metasgd", "reptile", "maml++"],
)
def test_gradient_based_learners_learn_sinusoids(make, optimizer, lr, steps):
    """After a few hundred meta-iterations, post-adaptation MSE on new sinusoids falls well below an untrained net's."""
    torch.manual_seed(0)
    algorithm = make()
    held_out = [task for task, _ in zip(SinusoidTasks(10, 50, seed=123), range(100))]
    before = sinusoid_mse(algorithm, held_out)
    stream = SinusoidTasks(10, 10, seed=0)
    meta_train(algorithm, lambda: [stream.sample() for _ in range(5)], steps, optimizer(algorithm.parameters(), lr=lr))
    after = sinusoid_mse(algorithm, held_out)
    assert after < 0.7 * before, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda: MAML(nn.Sequential(conv4(hidden=16, out_channels=16), nn.Linear(16, 5)), inner_lr=0.4),
        lambda: ANIL(conv4(hidden=16, out_channels=16), nn.Linear(16, 5), inner_lr=0.4),
    ],
    ids=["maml", "anil"],
)
def test_gradient_based_learners_learn_5way_glyphs(make):
    torch.manual_seed(0)
    train, test = load_synthetic(subset="train"), load_synthetic(subset="test")
    algorithm = make()
    episodes = EpisodeSet.generate(test, 5, 1, 5, count=60, seed=0)
    before = evaluate(algorithm, episodes.tasks(test), progress=False).mean
    sampler = EpisodeSampler(train, 5, 1, 5, seed=0)
    optimizer = torch.optim.Adam(algorithm.parameters(), lr=1e-3)
    meta_train(algorithm, lambda: [sampler.sample() for _ in range(4)], 120, optimizer)
    after = evaluate(algorithm, episodes.tasks(test), progress=False).mean
    assert after > before + 0.2 and after > 0.5, (before, after)


@pytest.mark.slow
def test_meta_learner_lstm_starts_as_gated_gradient_descent_and_learns_glyphs():
    from learntolearn.algorithms import MetaLearnerLSTM

    torch.manual_seed(0)
    model = nn.Sequential(conv4(hidden=16, out_channels=16), nn.Linear(16, 5))
    learner = MetaLearnerLSTM(model, inner_lr=0.4, inner_steps=1)
    train, test = load_synthetic(subset="train"), load_synthetic(subset="test")
    task = EpisodeSampler(train, 5, 1, 5, seed=1).sample()
    learner.train()
    theta = dict(learner.model.named_parameters())
    loss = F.cross_entropy(learner.forward_with(theta, task.support_x), task.support_y)
    grads = dict(zip(theta, torch.autograd.grad(loss, list(theta.values()))))
    fast = learner.fast_weights(task.support_x, task.support_y, 5)
    for name, p in theta.items():
        expected = torch.sigmoid(torch.tensor(5.0)) * p - 0.4 * grads[name]
        torch.testing.assert_close(fast[name], expected, atol=1e-6, rtol=1e-5)
    learner.zero_grad()
    learner.meta_loss([task]).loss.backward()
    assert learner.input_gate.weight.grad.abs().sum() > 0 and learner.forget_gate.bias.grad.abs() > 0
    episodes = EpisodeSet.generate(test, 5, 1, 5, count=60, seed=0)
    before = evaluate(learner, episodes.tasks(test), progress=False).mean
    sampler = EpisodeSampler(train, 5, 1, 5, seed=0)
    meta_train(
        learner, lambda: [sampler.sample() for _ in range(4)], 250, torch.optim.Adam(learner.parameters(), lr=1e-3)
    )
    after = evaluate(learner, episodes.tasks(test), progress=False).mean
    assert after > before + 0.2, (before, after)  # 0.23 -> 0.54 with 1 or 2 threads


def test_shuffles_come_from_the_algorithms_generator_when_it_has_one():
    def draws(generator_seed, global_seed):
        torch.manual_seed(global_seed)
        reptile = Reptile(nn.Linear(2, 2), inner_batch=3)
        if generator_seed is not None:
            reptile.generator = torch.Generator().manual_seed(generator_seed)
        return torch.stack(reptile.minibatches(size=10, steps=6))

    assert torch.equal(draws(7, 0), draws(7, 1)), "an own generator makes the draws independent of the global RNG"
    assert not torch.equal(draws(7, 0), draws(8, 0))
    assert torch.equal(draws(None, 0), draws(None, 0)) and not torch.equal(draws(None, 0), draws(None, 1))
