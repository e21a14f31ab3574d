"""Federated presets, the federations they run on, and the personalised evaluation of held-out clients.

Omniglot: one client per alphabet of the official archives; the 30 ``background`` alphabets train, the 20
``evaluation`` alphabets are held out. Fashion-MNIST: the 60,000 training images dealt to clients under
Dirichlet label skew; the last ``held_out_clients`` clients are held out. Every client keeps some examples of
each of its classes aside (never trained on): the queries of its personalised evaluation."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from learntolearn.data.fashion_mnist import load_fashion_mnist
from learntolearn.data.omniglot import load_omniglot
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.errors import ConfigError, UnknownNameError
from learntolearn.federated.clients import Client, Federation, alphabet_clients, dirichlet_clients, episode
from learntolearn.federated.local import ALGORITHMS, ConvClassifier, LocalSettings, personalised_accuracy, uses_head
from learntolearn.types import Params


@dataclass(frozen=True)
class FederatedConfig:
    name: str
    data: str  # "omniglot-alphabets" or "fashion-mnist-dirichlet"
    algorithm: str
    rounds: int = 150
    clients_per_round: int = 10
    ways: int = 5  # episodic clients; global clients use every class they have
    shots: int = 1
    queries: int = 5
    local_tasks: int = 5  # episodes per client per round
    channels: int = 32
    lr: float = 0.1
    inner_lr: float = 0.4  # MAML's Omniglot rate
    meta_lr: float = 1.0
    adapt_steps: int = 3
    hessian_delta: float = 1e-5
    alpha: float = 0.3  # Fashion-MNIST's Dirichlet concentration
    clients: int = 50  # Fashion-MNIST clients in all (training and held out)
    held_out_clients: int = 10  # Fashion-MNIST
    held_out_per_class: int = 5  # Omniglot drawings of each character kept aside
    held_out_fraction: float = 0.2  # Fashion-MNIST examples of each client kept aside
    eval_episodes: int = 10  # fixed episodes per held-out client
    eval_every: int = 25
    seed: int = 0

    def check(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UnknownNameError(
                f"unknown federated algorithm {self.algorithm!r}; choose from {', '.join(ALGORITHMS)}"
            )
        if self.data not in FEDERATIONS:
            raise UnknownNameError(f"unknown federation {self.data!r}; choose from {', '.join(sorted(FEDERATIONS))}")
        for name in ("rounds", "clients_per_round", "ways", "shots", "queries", "local_tasks", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def local(self) -> LocalSettings:
        names = {f.name for f in fields(LocalSettings)}
        return LocalSettings(**{k: v for k, v in asdict(self).items() if k in names})

    def model(self) -> ConvClassifier:
        outputs = 10 if self.data == "fashion-mnist-dirichlet" else self.ways
        return ConvClassifier(self.channels, outputs)

    def initial_params(self) -> Params:
        return self.model().init(self.seed, head=uses_head(self.algorithm))


def _omniglot(config: FederatedConfig, data_root: str | None) -> Federation:
    def clients(subset: str) -> list[Client]:
        dataset = load_omniglot("lake", subset, data_root=data_root, image_size=28)
        per_class = set(dataset.offsets.diff().tolist())
        images = dataset.to_float(torch.arange(len(dataset.images))).reshape(
            len(dataset.class_names), per_class.pop(), 1, 28, 28
        )
        return alphabet_clients(images, list(dataset.class_names), config.held_out_per_class, config.seed)

    return Federation("omniglot-alphabets", clients("background"), clients("evaluation"), config.ways)


def _fashion(config: FederatedConfig, data_root: str | None) -> Federation:
    dataset = load_fashion_mnist(subset="train", data_root=data_root)
    labels = torch.repeat_interleave(torch.arange(len(dataset.class_names)), dataset.offsets.diff())
    images = dataset.to_float(torch.arange(len(dataset.images)))
    everyone = dirichlet_clients(images, labels, config.clients, config.alpha, config.held_out_fraction, config.seed)
    keep = config.clients - config.held_out_clients
    return Federation("fashion-mnist-dirichlet", everyone[:keep], everyone[keep:], 10)


FEDERATIONS = {"omniglot-alphabets": _omniglot, "fashion-mnist-dirichlet": _fashion}


@functools.lru_cache(maxsize=2)
def _federation(data: str, key: tuple[Any, ...], data_root: str | None) -> Federation:
    return FEDERATIONS[data](FederatedConfig("federation", data, "fedavg", **dict(key)), data_root)


def federation(config: FederatedConfig, data_root: str | None = None) -> Federation:
    """The clients of ``config``'s data set (cached per process: a client process loads its data once)."""
    config.check()
    data_fields = ("alpha", "clients", "held_out_clients", "held_out_per_class", "held_out_fraction", "seed")
    key = tuple((k, v) for k, v in asdict(config).items() if k in data_fields)
    return _federation(config.data, key, data_root)


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


#: Per-algorithm rates, each the best of two or three values in 20-round probes on the Omniglot training
#: clients' held-out drawings (never on held-out clients): FedAvg's local rate 0.1 (of 0.1, 0.3), Per-FedAvg's
#: outer rate 0.3 (of 0.1, 0.3), FedMeta's meta rate 1.0 for MAML (of 0.5, 1.0) and 0.25 for ProtoNets (of 0.25,
#: 0.5, 1.0). The inner and personalisation rate is MAML's Omniglot rate, 0.4.
RATES: dict[str, dict[str, Any]] = {
    "per-fedavg-fo": {"lr": 0.3},
    "per-fedavg-hf": {"lr": 0.3},
    "fedmeta-protonet": {"meta_lr": 0.25},
}
PRESETS: dict[str, FederatedConfig] = {}
for _algorithm in ALGORITHMS:
    _rates = RATES.get(_algorithm, {})
    PRESETS[f"{_algorithm}-omniglot"] = replace(
        FederatedConfig(f"{_algorithm}-omniglot", "omniglot-alphabets", _algorithm), **_rates
    )
    PRESETS[f"{_algorithm}-fashion"] = replace(
        FederatedConfig(f"{_algorithm}-fashion", "fashion-mnist-dirichlet", _algorithm, shots=5, queries=20), **_rates
    )


def preset(name: str, **changes: Any) -> FederatedConfig:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown federated preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    config = replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})
    config.check()
    return config
