"""Federated presets, the federations they run on, and the personalised evaluation of held-out clients.

Omniglot: one client per alphabet of the official archives; the 30 ``background`` alphabets train, the 20
``evaluation`` alphabets are held out. CLINC150: one client per domain (fifteen intents of 150 utterances, embedded
by the packaged sentence encoder); the eight domains of the domain split's train and val parts train, its two
test domains are held out. Fashion-MNIST: the 60,000 training images dealt to clients under
Dirichlet label skew; the last ``held_out_clients`` clients are held out. Every client keeps some examples of
each of its classes aside (never trained on): the queries of its personalised evaluation."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from learntolearn.data.fashion_mnist import load_fashion_mnist
from learntolearn.data.omniglot import load_omniglot, omniglot_alphabets
from learntolearn.data.text import CLINC_SPLITS, clinc150_domains, load_clinc150_features
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.errors import ConfigError, DataError, UnknownNameError
from learntolearn.federated.clients import Client, dirichlet_clients, episode, group_client
from learntolearn.federated.local import (
    ALGORITHMS,
    ConvClassifier,
    FeatureClassifier,
    LocalModel,
    LocalSettings,
    personalised_accuracy,
    uses_head,
)
from learntolearn.types import Params

FEDERATIONS = ("omniglot-alphabets", "clinc150-domains", "fashion-mnist-dirichlet")
CLINC_TRAINING_DOMAINS = CLINC_SPLITS["domain"]["train"] + CLINC_SPLITS["domain"]["val"]
CLINC_HELD_OUT_DOMAINS = CLINC_SPLITS["domain"]["test"]
TEXT_FEATURES = 384  # the packaged sentence encoder's embedding size


@dataclass(frozen=True)
class FederatedConfig:
    name: str
    data: str  # one of FEDERATIONS
    algorithm: str
    rounds: int = 150
    clients_per_round: int = 10
    ways: int = 5  # episodic clients; global clients use every class they have
    shots: int = 1
    queries: int = 5
    local_tasks: int = 5  # episodes per client per round
    channels: int = 32  # images: the convolutional network's width
    hidden: int = 256  # texts: the feature classifier's width
    lr: float = 0.1
    inner_lr: float = 0.4  # MAML's Omniglot rate
    meta_lr: float = 1.0
    adapt_steps: int = 3
    hessian_delta: float = 1e-5
    alpha: float = 0.3  # Fashion-MNIST's Dirichlet concentration
    clients: int = 50  # Fashion-MNIST clients in all (training and held out)
    held_out_clients: int = 10  # Fashion-MNIST
    held_out_per_class: int = 5  # Omniglot drawings of each character (CLINC150 utterances of each intent) kept aside
    held_out_fraction: float = 0.2  # Fashion-MNIST examples of each client kept aside
    eval_episodes: int = 10  # fixed episodes per held-out client
    eval_every: int = 25
    seed: int = 0
    dp_clip: float = 0.0  # > 0: central differential privacy, each client's update clipped to this L2 norm
    dp_noise: float = 0.0  # Gaussian noise multiplier on the clipped updates' average (Flower's DP wrapper)

    def check(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UnknownNameError(
                f"unknown federated algorithm {self.algorithm!r}; choose from {', '.join(ALGORITHMS)}"
            )
        if self.data not in FEDERATIONS:
            raise UnknownNameError(f"unknown federation {self.data!r}; choose from {', '.join(FEDERATIONS)}")
        if self.dp_noise < 0 or self.dp_clip < 0 or (self.dp_noise > 0 and self.dp_clip == 0):
            raise ConfigError(
                f"differential privacy needs a positive clipping norm and a non-negative noise multiplier, got "
                f"dp_clip={self.dp_clip}, dp_noise={self.dp_noise}"
            )
        for name in ("rounds", "clients_per_round", "ways", "shots", "queries", "local_tasks", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def local(self) -> LocalSettings:
        names = {f.name for f in fields(LocalSettings)}
        return LocalSettings(**{k: v for k, v in asdict(self).items() if k in names})

    def model(self) -> LocalModel:
        if self.data == "clinc150-domains":
            return FeatureClassifier(TEXT_FEATURES, self.hidden, self.ways)
        outputs = 10 if self.data == "fashion-mnist-dirichlet" else self.ways
        return ConvClassifier(self.channels, outputs)

    def initial_params(self) -> Params:
        return self.model().init(self.seed, head=uses_head(self.algorithm))


def _omniglot_clients(
    config: FederatedConfig, subset: str, alphabets: list[str], data_root: str | None
) -> list[Client]:
    dataset = load_omniglot("lake", subset, data_root=data_root, image_size=28, alphabets=alphabets)
    images = dataset.to_float(torch.arange(len(dataset.images)))
    clients = []
    for alphabet in alphabets:
        rows = [i for i, name in enumerate(dataset.class_names) if name.split("/")[0] == alphabet]
        start, stop = int(dataset.offsets[rows[0]]), int(dataset.offsets[rows[-1] + 1])
        per_class = (stop - start) // len(rows)
        characters = images[start:stop].reshape(len(rows), per_class, 1, 28, 28)
        clients.append(group_client(alphabet, characters, config.held_out_per_class, config.seed))
    return clients


@functools.lru_cache(maxsize=1)
def _clinc_domains(data_root: str | None) -> dict[str, Tensor]:
    """Every domain's embedded utterances, ``[15 intents, 150 utterances, 384]`` (encoded once, then cached)."""
    domains: dict[str, Tensor] = {}
    intents_of = clinc150_domains(data_root)
    for subset, names in CLINC_SPLITS["domain"].items():
        dataset = load_clinc150_features("domain", subset, data_root=data_root)
        assert dataset.features is not None
        counts = set(dataset.counts.tolist())
        if len(counts) != 1:
            raise DataError(f"{dataset.name}: every CLINC150 intent should have 150 utterances, found counts {counts}")
        per_intent = dataset.features.reshape(dataset.n_classes, counts.pop(), -1)
        intents = {name: i for i, name in enumerate(dataset.class_names)}
        for domain in names:
            domains[domain] = per_intent[[intents[i] for i in intents_of[domain]]]
    return domains


def _clinc_clients(config: FederatedConfig, domains: tuple[str, ...], data_root: str | None) -> list[Client]:
    features = _clinc_domains(data_root)
    return [group_client(d, features[d], config.held_out_per_class, config.seed) for d in domains]


@functools.lru_cache(maxsize=1)
def _fashion(alpha: float, clients: int, held_out_fraction: float, seed: int, data_root: str | None) -> list[Client]:
    dataset = load_fashion_mnist(subset="train", data_root=data_root)
    labels = torch.repeat_interleave(torch.arange(len(dataset.class_names)), dataset.offsets.diff())
    images = dataset.to_float(torch.arange(len(dataset.images)))
    return dirichlet_clients(images, labels, clients, alpha, held_out_fraction, seed)


def _fashion_clients(config: FederatedConfig, data_root: str | None) -> list[Client]:
    return _fashion(config.alpha, config.clients, config.held_out_fraction, config.seed, data_root)


def training_client_count(config: FederatedConfig, data_root: str | None = None) -> int:
    """How many training clients the federation has (partitions ``0 .. count - 1``)."""
    if config.data == "omniglot-alphabets":
        return len(omniglot_alphabets("lake", "background", data_root=data_root))
    if config.data == "clinc150-domains":
        return len(CLINC_TRAINING_DOMAINS)
    return config.clients - config.held_out_clients


@functools.lru_cache(maxsize=64)  # a simulation's client process serves many partitions in turn
def _training_client(config: FederatedConfig, partition: int, data_root: str | None) -> Client:
    if config.data == "omniglot-alphabets":
        alphabet = omniglot_alphabets("lake", "background", data_root=data_root)[partition]
        return _omniglot_clients(config, "background", [alphabet], data_root)[0]
    if config.data == "clinc150-domains":
        return _clinc_clients(config, (CLINC_TRAINING_DOMAINS[partition],), data_root)[0]
    return _fashion_clients(config, data_root)[partition]


def training_client(config: FederatedConfig, partition: int, data_root: str | None = None) -> Client:
    """Training client ``partition``, loading only its own data (cached per process)."""
    count = training_client_count(config, data_root)
    if not 0 <= partition < count:
        raise ConfigError(f"partition-id {partition} is not a training client of {config.data} (0 .. {count - 1})")
    return _training_client(_data_key(config), partition, data_root)


def held_out_clients(config: FederatedConfig, data_root: str | None = None) -> list[Client]:
    """The clients that never train: Omniglot's evaluation alphabets, CLINC150's test domains, or Fashion-MNIST's
    last clients."""
    if config.data == "omniglot-alphabets":
        alphabets = omniglot_alphabets("lake", "evaluation", data_root=data_root)
        return _omniglot_clients(config, "evaluation", alphabets, data_root)
    if config.data == "clinc150-domains":
        return _clinc_clients(config, CLINC_HELD_OUT_DOMAINS, data_root)
    return _fashion_clients(config, data_root)[config.clients - config.held_out_clients :]


def _data_key(config: FederatedConfig) -> FederatedConfig:
    """``config`` with only the settings that decide the clients' data (one cache entry per federation)."""
    return FederatedConfig(
        "federation",
        config.data,
        "fedavg",
        alpha=config.alpha,
        clients=config.clients,
        held_out_clients=config.held_out_clients,
        held_out_per_class=config.held_out_per_class,
        held_out_fraction=config.held_out_fraction,
        seed=config.seed,
    )


def training_tasks(config: FederatedConfig, client: Client, partition: int, round_: int) -> list:
    """The episodes a training client learns from in one round (reproducible from the seed, round and client)."""
    generator = torch.Generator().manual_seed(1_000_003 * config.seed + 1_009 * round_ + partition)
    return [episode(client, config.ways, config.shots, config.queries, generator) for _ in range(config.local_tasks)]


def evaluation_tasks(config: FederatedConfig, clients: list[Client]) -> list:
    """Fixed episodes per client: support from its local examples, queries from its held-out ones."""
    tasks = []
    for index, client in enumerate(clients):
        generator = torch.Generator().manual_seed(10_007 * (config.seed + 1) + index)
        tasks += [
            episode(client, config.ways, config.shots, config.queries, generator, queries_from="held_out")
            for _ in range(config.eval_episodes)
        ]
    return tasks


def personalised_scores(config: FederatedConfig, params: Params, clients: list[Client]) -> list[float]:
    """Per-episode accuracy after personalising ``params`` on each client's support sets."""
    model = config.model()
    return [
        personalised_accuracy(config.algorithm, model, params, t, config.local)
        for t in evaluation_tasks(config, clients)
    ]


def summarise(scores: list[float]) -> dict[str, float]:
    values = torch.tensor(scores, dtype=torch.float64)
    return {"accuracy": float(values.mean()), "ci95": confidence_interval(values), "episodes": len(scores)}


#: Per-algorithm rates per federation, chosen in 20-round probes scored only on the training clients' own
#: held-out examples (never on held-out clients). Omniglot: the best of two or three values each (FedAvg's local
#: rate 0.1 of 0.1, 0.3; Per-FedAvg's outer rate 0.3 of 0.1, 0.3; FedMeta's meta rate 1.0 for MAML of 0.5, 1.0 and
#: 0.25 for ProtoNets of 0.25, 0.5, 1.0; personalisation at MAML's Omniglot rate 0.4). CLINC150 and Fashion-MNIST:
#: `scripts/reproduce/federated_rates.py`, every setting tried and its score in
#: results/federated-clinc150-rates-100rounds.json and results/federated-fashion-rates-20rounds.json. Unlisted rates are FederatedConfig's defaults.
RATES: dict[str, dict[str, dict[str, Any]]] = {
    "omniglot": {
        "per-fedavg-fo": {"lr": 0.3},
        "per-fedavg-hf": {"lr": 0.3},
        "fedmeta-protonet": {"meta_lr": 0.25},
    },
    "clinc150": {  # probed over the comparison's 100 rounds: 20-round probes chose rates that later diverged
        "fedavg-ft": {"inner_lr": 1.0},
        "per-fedavg-fo": {"lr": 0.003, "inner_lr": 1.0},
        "per-fedavg-hf": {"lr": 0.03, "inner_lr": 0.1},
        "fedmeta-maml": {"meta_lr": 0.03, "inner_lr": 1.0},
        "fedmeta-protonet": {"meta_lr": 3.0},
    },
    "fashion": {  # personalisation rates (and ProtoNets' meta rate) probed; the outer rates are Omniglot's
        "fedavg-ft": {"inner_lr": 0.03},
        "per-fedavg-fo": {"lr": 0.3, "inner_lr": 0.1},
        "per-fedavg-hf": {"lr": 0.3, "inner_lr": 0.003},
        "fedmeta-protonet": {"meta_lr": 0.03},
    },
}
PRESETS: dict[str, FederatedConfig] = {}
for _algorithm in ALGORITHMS:
    PRESETS[f"{_algorithm}-omniglot"] = replace(
        FederatedConfig(f"{_algorithm}-omniglot", "omniglot-alphabets", _algorithm),
        **RATES["omniglot"].get(_algorithm, {}),
    )
    PRESETS[f"{_algorithm}-clinc150"] = replace(
        FederatedConfig(
            f"{_algorithm}-clinc150",
            "clinc150-domains",
            _algorithm,
            clients_per_round=4,
            held_out_per_class=30,
            eval_episodes=100,
            eval_every=5,
        ),
        **RATES["clinc150"].get(_algorithm, {}),
    )
    PRESETS[f"{_algorithm}-fashion"] = replace(
        FederatedConfig(
            f"{_algorithm}-fashion", "fashion-mnist-dirichlet", _algorithm, shots=5, queries=20, eval_every=10
        ),
        **RATES["fashion"].get(_algorithm, {}),
    )


def preset(name: str, **changes: Any) -> FederatedConfig:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown federated preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    config = replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})
    config.check()
    return config
