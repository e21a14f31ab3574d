"""Federated clients from real data, non-IID by construction, and the few-shot episodes each one draws.

A client holds ``local`` examples (what it trains and personalises on) and ``held_out`` examples (never
trained on: the queries of its personalised evaluation). Two label spaces:

- ``episodic``: a client's classes are its own (one Omniglot alphabet, one CLINC150 domain); an episode
  picks ``ways`` of them and numbers them ``0 .. ways-1`` in a random order, as meta-learning episodes do;
- ``global``: every client shares the data set's labels (Fashion-MNIST under Dirichlet label skew, Hsu et al.
  2019); an episode's support is ``shots`` local examples of each class the client has, its queries follow
  the client's own label distribution.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy
import torch
from torch import Tensor

from learntolearn.errors import DataError, UnknownNameError
from learntolearn.types import Task


@dataclass(frozen=True)
class Client:
    name: str
    local_x: Tensor
    local_y: Tensor
    held_out_x: Tensor
    held_out_y: Tensor
    label_space: str  # "episodic" or "global"

    @property
    def classes(self) -> Tensor:
        return torch.unique(self.local_y)


def split_each_class(
    x: Tensor, y: Tensor, held_out_per_class: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(local_x, local_y, held_x, held_y)``: ``held_out_per_class`` random examples of every class held out."""
    local, held = [], []
    for label in torch.unique(y):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        held.append(members[:held_out_per_class])
        local.append(members[held_out_per_class:])
    local_index, held_index = torch.cat(local), torch.cat(held)
    return x[local_index], y[local_index], x[held_index], y[held_index]


def group_client(name: str, examples: Tensor, held_out_per_class: int, seed: int) -> Client:
    """The client of one group of classes (an Omniglot alphabet, a CLINC150 domain), ``examples [classes,
    examples per class, ...]``; which examples are held out depends only on the seed and the group's name."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    y = torch.arange(len(examples)).repeat_interleave(examples.shape[1])
    local_x, local_y, held_x, held_y = split_each_class(examples.flatten(0, 1), y, held_out_per_class, generator)
    return Client(name, local_x, local_y, held_x, held_y, label_space="episodic")


def dirichlet_clients(
    x: Tensor, y: Tensor, clients: int, alpha: float, held_out_fraction: float, seed: int, prefix: str = "client"
) -> list[Client]:
    """``clients`` clients with Dirichlet(``alpha``) label skew: each class's examples are dealt to the clients
    in proportions drawn from a symmetric Dirichlet (small ``alpha``: each client sees few classes)."""
    if alpha <= 0:
        raise DataError(f"the Dirichlet concentration alpha must be positive, got {alpha}")
    generator = torch.Generator().manual_seed(seed)
    proportions = numpy.random.default_rng(seed)
    owners = torch.empty(len(y), dtype=torch.long)
    for label in torch.unique(y):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        shares = torch.from_numpy(proportions.dirichlet([float(alpha)] * clients))
        cuts = (shares.cumsum(0) * len(members)).round().long().clamp(max=len(members))
        starts = torch.cat([torch.zeros(1, dtype=torch.long), cuts[:-1]])
        for client, (start, stop) in enumerate(zip(starts.tolist(), cuts.tolist())):
            owners[members[start:stop]] = client
    result = []
    for client in range(clients):
        mine = torch.nonzero(owners == client).flatten()
        mine = mine[torch.randperm(len(mine), generator=generator)]
        held = max(1, round(held_out_fraction * len(mine))) if len(mine) > 1 else 0
        local, held_index = mine[held:], mine[:held]
        if len(local) == 0:
            raise DataError(
                f"client {client} of {clients} received no examples under alpha={alpha}; use fewer clients or a "
                "larger alpha"
            )
        result.append(Client(f"{prefix}{client:03d}", x[local], y[local], x[held_index], y[held_index], "global"))
    return result


def episode(
    client: Client,
    ways: int,
    shots: int,
    queries: int,
    generator: torch.Generator,
    *,
    queries_from: str = "local",
) -> Task:
    """One few-shot task of ``client``: support from its local examples, queries from the rest of its local
    examples (training) or from its held-out ones (``queries_from="held_out"``, evaluation)."""
    if client.label_space == "episodic":
        return _episodic(client, ways, shots, queries, generator, queries_from)
    if client.label_space == "global":
        return _global(client, shots, queries, generator, queries_from)
    raise UnknownNameError(f"unknown label space {client.label_space!r}; choose episodic or global")


def _pick(members: Tensor, count: int, generator: torch.Generator) -> Tensor:
    return members[torch.randperm(len(members), generator=generator)[:count]]


def _episodic(
    client: Client, ways: int, shots: int, queries: int, generator: torch.Generator, queries_from: str
) -> Task:
    held = queries_from == "held_out"
    need_local = shots if held else shots + queries
    usable = [
        int(c)
        for c in client.classes
        if int((client.local_y == c).sum()) >= need_local
        and (not held or int((client.held_out_y == c).sum()) >= queries)
    ]
    if len(usable) < ways:
        raise DataError(
            f"client {client.name} has {len(usable)} classes with {shots} support and {queries} query examples; "
            f"a {ways}-way episode needs {ways}"
        )
    chosen = torch.tensor(usable)[torch.randperm(len(usable), generator=generator)[:ways]]
    support, query = [], []
    for c in chosen.tolist():
        local = _pick(torch.nonzero(client.local_y == c).flatten(), need_local, generator)
        support.append(client.local_x[local[:shots]])
        if held:
            query.append(client.held_out_x[_pick(torch.nonzero(client.held_out_y == c).flatten(), queries, generator)])
        else:
            query.append(client.local_x[local[shots:]])
    labels = torch.arange(ways)
    return Task(
        torch.cat(support), labels.repeat_interleave(shots), torch.cat(query), labels.repeat_interleave(queries), chosen
    )


def _global(client: Client, shots: int, queries: int, generator: torch.Generator, queries_from: str) -> Task:
    support_index = []
    for c in client.classes.tolist():
        support_index.append(_pick(torch.nonzero(client.local_y == c).flatten(), shots, generator))
    support = torch.cat(support_index)
    if queries_from == "held_out":
        pool_x, pool_y = client.held_out_x, client.held_out_y
    else:
        rest = torch.ones(len(client.local_y), dtype=torch.bool)
        rest[support] = False
        pool_x, pool_y = client.local_x[rest], client.local_y[rest]
    if len(pool_y) == 0:
        raise DataError(f"client {client.name} has no {queries_from.replace('_', '-')} examples left for queries")
    query = _pick(torch.arange(len(pool_y)), queries, generator)
    return Task(client.local_x[support], client.local_y[support], pool_x[query], pool_y[query], client.classes)
