"""Federated meta-learning: clients' partitions, episodes and the local computations of each algorithm against
independent references; the messages a client sends carry only model tensors and numbers."""

import json
from dataclasses import asdict, replace

import pytest
import torch

from learntolearn.errors import DataError
from learntolearn.federated.clients import Client, dirichlet_clients, episode, group_client
from learntolearn.federated.local import (
    ConvClassifier,
    FeatureClassifier,
    LocalSettings,
    cross_entropy,
    fedmeta_update,
    local_update,
    maml_query_loss,
    per_fedavg_direction,
    personalised_accuracy,
    protonet_logits,
)
from learntolearn.types import Task


def toy_task(ways=3, shots=2, queries=2, seed=0, dtype=torch.float64, kind="images"):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(ways)
    shape = (1, 28, 28) if kind == "images" else (12,)
    return Task(
        torch.rand(ways * shots, *shape, generator=g, dtype=dtype),
        labels.repeat_interleave(shots),
        torch.rand(ways * queries, *shape, generator=g, dtype=dtype),
        labels.repeat_interleave(queries),
        labels,
    )


def toy_model(outputs=3, kind="images"):
    model = ConvClassifier(channels=4, outputs=outputs) if kind == "images" else FeatureClassifier(12, 8, outputs)
    return model, {n: v.double().requires_grad_(True) for n, v in model.init(0).items()}


def flat(params):
    return torch.cat([v.flatten() for v in params.values()])


def test_per_fedavg_first_order_direction_is_the_query_gradient_at_the_adapted_model():
    model, params = toy_model()
    task = toy_task()
    alpha = 0.1
    support_grad = torch.autograd.grad(
        cross_entropy(model, params, task.support_x, task.support_y), list(params.values())
    )
    adapted = {n: p - alpha * g for (n, p), g in zip(params.items(), support_grad)}
    expected = torch.autograd.grad(cross_entropy(model, adapted, task.query_x, task.query_y), list(adapted.values()))
    got = per_fedavg_direction(model, params, task, alpha, hessian_free=False, delta=1e-3)
    torch.testing.assert_close(flat(got), torch.cat([g.flatten() for g in expected]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["images", "features"])
def test_per_fedavg_hessian_free_direction_approaches_the_exact_maml_gradient(kind):
    """Finite differences of gradients (Fallah et al. Eq. 11) against autograd through the inner step; the step
    must stay below the distance to the nearest ReLU or max-pool switch (1e-4 crosses some here)."""
    model, params = toy_model(kind=kind)
    task = toy_task(kind=kind)
    exact = torch.func.grad(lambda p: maml_query_loss(model, p, task, 0.1))(params)
    first_order = per_fedavg_direction(model, params, task, 0.1, hessian_free=False, delta=1e-6)
    hessian_free = per_fedavg_direction(model, params, task, 0.1, hessian_free=True, delta=1e-6)
    error = (flat(hessian_free) - flat(exact)).norm() / flat(exact).norm()
    assert error < 1e-6
    assert (flat(first_order) - flat(exact)).norm() / flat(exact).norm() > 100 * error  # the Hessian term matters


@pytest.mark.parametrize("kind", ["images", "features"])
def test_fedmeta_maml_returns_the_model_moved_along_the_mean_meta_gradient(kind):
    model, params = toy_model(kind=kind)
    tasks = [toy_task(seed=1, kind=kind), toy_task(seed=2, kind=kind)]
    settings = LocalSettings(inner_lr=0.1, meta_lr=0.3)
    # the reference: explicit create_graph autograd, no shared helpers
    leaves = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    losses = []
    for task in tasks:
        grads = torch.autograd.grad(
            cross_entropy(model, leaves, task.support_x, task.support_y), list(leaves.values()), create_graph=True
        )
        fast = {n: p - 0.1 * g for (n, p), g in zip(leaves.items(), grads)}
        losses.append(cross_entropy(model, fast, task.query_x, task.query_y))
    meta = torch.autograd.grad(torch.stack(losses).mean(), list(leaves.values()))
    expected = {n: p - 0.3 * g for (n, p), g in zip(params.items(), meta)}
    got = fedmeta_update(model, params, tasks, settings, learner="maml")
    torch.testing.assert_close(flat(got), flat(expected), rtol=1e-10, atol=1e-12)


def test_protonet_logits_rule_out_labels_without_support_and_match_distances():
    model, params = toy_model(outputs=5)
    task = toy_task(ways=3)
    body = {n: v for n, v in params.items() if n.startswith("body")}
    logits = protonet_logits(model, body, task.support_x, task.support_y, task.query_x)
    assert logits.shape == (6, 5)
    assert torch.isinf(logits[:, 3:]).all() and torch.isfinite(logits[:, :3]).all()
    embedded = model.embed(body, task.support_x).view(3, 2, -1).mean(1)
    query = model.embed(body, task.query_x)
    torch.testing.assert_close(logits[:, :3], -torch.cdist(query, embedded).square(), rtol=1e-8, atol=1e-8)


def test_fedavg_takes_one_sgd_step_per_task_on_all_its_examples():
    model, params = toy_model()
    task = toy_task()
    x, y = torch.cat([task.support_x, task.query_x]), torch.cat([task.support_y, task.query_y])
    grads = torch.autograd.grad(cross_entropy(model, params, x, y), list(params.values()))
    expected = {n: p - 0.05 * g for (n, p), g in zip(params.items(), grads)}
    got = local_update("fedavg", model, params, [task], LocalSettings(lr=0.05))
    torch.testing.assert_close(flat(got), flat(expected))


def test_personalisation_fits_the_support_set_and_plain_fedavg_does_not_adapt():
    model, params = toy_model()
    task = toy_task()
    memorise = replace(task, query_x=task.support_x, query_y=task.support_y)
    settings = LocalSettings(inner_lr=0.1, adapt_steps=50)
    assert personalised_accuracy("fedavg-ft", model, params, memorise, settings) == 1.0
    untouched = (model.logits(params, task.support_x).argmax(-1) == task.support_y).double().mean()
    assert personalised_accuracy("fedavg", model, params, memorise, settings) == pytest.approx(float(untouched))


def test_dirichlet_clients_deal_every_example_once_and_small_alpha_skews_labels():
    y = torch.arange(10).repeat_interleave(100)
    x = torch.arange(1000).float().view(-1, 1, 1, 1)

    def top_class_share(alpha):
        clients = dirichlet_clients(x, y, 10, alpha, 0.2, seed=3)
        seen = torch.cat([torch.cat([c.local_x, c.held_out_x]).flatten() for c in clients]).sort().values
        assert torch.equal(seen, x.flatten())  # each example dealt to exactly one client
        counts = [torch.cat([c.local_y, c.held_out_y]).bincount(minlength=10) for c in clients]
        return sum(float(c.max() / c.sum()) for c in counts) / len(clients)

    assert top_class_share(100.0) < 0.25 < 0.45 < top_class_share(0.1)
    again = dirichlet_clients(x, y, 10, 0.1, 0.2, seed=3)
    assert torch.equal(again[4].local_x, dirichlet_clients(x, y, 10, 0.1, 0.2, seed=3)[4].local_x)
    with pytest.raises(DataError, match="alpha must be positive"):
        dirichlet_clients(x, y, 10, 0.0, 0.2, seed=3)
    with pytest.raises(DataError, match="no examples.*fewer clients"):
        dirichlet_clients(x[:12], y[:12], 10, 0.01, 0.2, seed=0)


def test_group_clients_own_one_alphabet_and_keep_drawings_aside():
    images = torch.arange(5 * 4).float().view(5, 4, 1, 1, 1)  # 5 characters, 4 drawings; Latin is the last 3
    latin = group_client("Latin", images[2:], held_out_per_class=1, seed=0)
    assert latin.local_y.bincount().tolist() == [3, 3, 3] and latin.held_out_y.bincount().tolist() == [1, 1, 1]
    both = torch.cat([latin.local_x, latin.held_out_x]).flatten().sort().values
    assert torch.equal(both, images[2:].flatten())  # Latin's drawings only, each once
    again = group_client("Latin", images[2:], held_out_per_class=1, seed=0)
    assert torch.equal(again.held_out_x, latin.held_out_x)  # the held-out drawings depend on seed and name only
    for label in range(3):  # a label is one character: its drawings come from one row of images
        rows = {
            int(v) // 4
            for v in torch.cat(
                [latin.local_x[latin.local_y == label], latin.held_out_x[latin.held_out_y == label]]
            ).flatten()
        }
        assert len(rows) == 1


def test_episodes_relabel_episodic_clients_and_keep_global_labels():
    x = torch.arange(60).float().view(-1, 1, 1, 1)
    y = torch.arange(6).repeat_interleave(10)
    local_x, local_y = x[y.new_ones(60).bool() & (torch.arange(60) % 10 < 8)], y[torch.arange(60) % 10 < 8]
    held_x, held_y = x[torch.arange(60) % 10 >= 8], y[torch.arange(60) % 10 >= 8]
    g = torch.Generator().manual_seed(0)
    episodic = Client("a", local_x, local_y, held_x, held_y, "episodic")
    task = episode(episodic, 4, 2, 2, g, queries_from="held_out")
    assert task.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and task.query_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert set(task.query_x.flatten().tolist()) <= set(held_x.flatten().tolist())
    for label, original in enumerate(task.class_ids.tolist()):  # relabelled consistently with the source classes
        assert (y[task.support_x[task.support_y == label].flatten().long()] == original).all()
    train_task = episode(episodic, 4, 2, 3, g)
    assert not set(train_task.query_x.flatten().tolist()) & set(train_task.support_x.flatten().tolist())
    with pytest.raises(DataError, match="7-way episode needs 7"):
        episode(episodic, 7, 2, 2, g)
    shared = Client("b", local_x, local_y, held_x, held_y, "global")
    task = episode(shared, 99, 1, 5, g, queries_from="held_out")
    assert sorted(task.support_y.tolist()) == list(range(6))
    assert torch.equal(y[task.query_x.flatten().long()], task.query_y)


def test_a_client_sends_only_model_tensors_and_numbers(data_root, monkeypatch):
    """Every reply of the ClientApp, inspected: arrays named and shaped like the model, scalar metrics; no
    inputs, labels or settings travel back."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from learntolearn.federated.app import client_app

    for name, value in (("_run_id", 1), ("_node_id", 1), ("_task_id", 1)):  # who sends: set by Flower's runtime
        monkeypatch.setattr(TaskIdentity, name, value)
    from learntolearn.federated.runs import preset

    config = preset("fedmeta-maml-fashion", clients=12, held_out_clients=2, local_tasks=1, eval_episodes=1)
    params = config.initial_params()
    settings = {"settings": json.dumps(asdict(config)), "round-offset": 0, "server-round": 1}
    context = Context(
        run_id=1,
        node_id=7,
        node_config={"partition-id": 3, "data-root": str(data_root)},
        state=RecordDict(),
        run_config={},
    )
    for kind in (MessageType.TRAIN, MessageType.EVALUATE, MessageType.QUERY):
        content = RecordDict(
            {"arrays": ArrayRecord({n: v for n, v in params.items()}), "config": ConfigRecord(settings)}
        )
        message = Message(content, dst_node_id=7, message_type=kind)
        reply = client_app(message, context)
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        assert set(reply.content.keys()) <= {"arrays", "metrics"}
        assert not reply.content.config_records
        for record in reply.content.metric_records.values():
            assert set(record) <= {"num-examples", "cpu-seconds", "data-cpu-seconds", "accuracy", "partition-id"}
            assert all(isinstance(v, (int, float)) for v in record.values())
        if kind == MessageType.TRAIN:
            sent = reply.content["arrays"].to_torch_state_dict()
            assert {n: tuple(v.shape) for n, v in sent.items()} == {n: tuple(v.shape) for n, v in params.items()}
        else:
            assert not reply.content.array_records


def test_clinc150_clients_are_whole_domains_and_the_test_domains_never_train(monkeypatch, data_root):
    """The real CLINC150 files with a stand-in encoder (each utterance's feature row is its index in the text
    list, so every row can be traced back to its text and intent)."""
    clinc_root = data_root
    if not (clinc_root / "clinc150" / "data_full.json").exists():
        pytest.skip(f"CLINC150 not under {clinc_root}")
    from learntolearn.data.text import clinc150_domains, load_clinc150
    from learntolearn.federated import runs

    texts: dict[str, str] = {}  # feature value -> utterance

    def traced(split, subset, *, data_root=None):
        dataset = load_clinc150(data_root, split, subset)
        start = len(texts)
        texts.update({str(start + i): t for i, t in enumerate(dataset.texts)})
        rows = torch.arange(start, start + len(dataset.texts), dtype=torch.float64)
        return dataset.with_features(rows[:, None].expand(-1, 384))

    monkeypatch.setattr(runs, "load_clinc150_features", traced)
    runs._clinc_domains.cache_clear()
    runs._training_client.cache_clear()
    config = runs.preset("fedmeta-maml-clinc150")
    domains = clinc150_domains(clinc_root)
    data = load_clinc150(clinc_root, "domain", "train")
    intent_of = {t: data.class_names[int(c)] for t, c in zip(data.texts, data.labels)}
    assert runs.training_client_count(config) == 8
    trained = [runs.training_client(config, p, str(clinc_root)) for p in range(8)]
    held_out = runs.held_out_clients(config, str(clinc_root))
    assert [c.name for c in held_out] == ["banking", "kitchen_and_dining"]
    assert not {c.name for c in trained} & {"banking", "kitchen_and_dining"}
    assert "auto_and_commute" in {c.name for c in trained} and "home" in {c.name for c in trained}
    for client in trained[:2]:
        assert client.local_x.shape == (15 * 120, 384) and client.held_out_x.shape == (15 * 30, 384)
        for label in range(15):  # a label is one intent of the client's domain, local and held out alike
            rows = torch.cat([client.local_x[client.local_y == label], client.held_out_x[client.held_out_y == label]])
            intents = {intent_of.get(texts[str(int(r))]) for r in rows[:, 0]}
            if None not in intents:  # utterances of the train-part domains can be traced to their intent
                assert intents == {domains[client.name][label]}
        assert len(set(client.local_x[:, 0].tolist()) | set(client.held_out_x[:, 0].tolist())) == 15 * 150
    task = runs.evaluation_tasks(config, held_out)
    assert len(task) == 200 and task[0].support_x.shape == (5, 384) and task[0].query_x.shape == (25, 384)
    runs._clinc_domains.cache_clear()
    runs._training_client.cache_clear()


def test_a_partition_outside_the_federation_is_refused_before_loading_data():
    from learntolearn.errors import ConfigError
    from learntolearn.federated.runs import preset, training_client

    config = preset("fedavg-fashion", clients=12, held_out_clients=2)
    with pytest.raises(
        ConfigError, match=r"partition-id 10 is not a training client of fashion-mnist-dirichlet \(0 .. 9\)"
    ):
        training_client(config, 10, "/nonexistent")


def test_certificates_chain_to_their_authority_and_are_not_overwritten(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from learntolearn.errors import LtlError
    from learntolearn.federated.certificates import make_certificates

    make_certificates(tmp_path, nodes=2, hosts=["localhost", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "superlink.crt").read_bytes())
    server.verify_directly_issued_by(ca)  # raises if the SuperLink's certificate is not the authority's
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    key = serialization.load_ssh_private_key((tmp_path / "supernode-1.key").read_bytes(), password=None)
    public = serialization.load_ssh_public_key((tmp_path / "supernode-1.pub").read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key().public_numbers() == public.public_numbers()
    assert (tmp_path / "supernode-1.key").stat().st_mode & 0o077 == 0  # private keys readable by their owner only
    before = (tmp_path / "ca.crt").read_bytes()
    with pytest.raises(LtlError, match="already holds ca.crt.*--force"):
        make_certificates(tmp_path, nodes=2, hosts=["localhost"])
    assert (tmp_path / "ca.crt").read_bytes() == before
