"""The Flower apps: a ClientApp that runs the library's local computations on a client's own data, and a
ServerApp around Flower's FedAvg strategy that picks clients reproducibly, checkpoints every round and
scores held-out clients.

Flower (``flwr``) does the federation: message passing, the simulation engine (Ray) and real deployments
(SuperLink and SuperNodes over gRPC with TLS and node authentication). What crosses the network is only
an ``ArrayRecord`` of model tensors, a ``ConfigRecord`` of settings and a ``MetricRecord`` of numbers.

A client finds its data from its node configuration: ``partition-id`` (which training client it is) and,
optionally, ``data-root``; the run's settings come in every message, so one ClientApp serves every preset.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy
import torch
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    MetricRecordValues,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, Strategy

from learntolearn.errors import DivergedError, LtlError
from learntolearn.federated.clients import Client
from learntolearn.federated.local import local_update, personalised_accuracy
from learntolearn.federated.runs import (
    FederatedConfig,
    evaluation_tasks,
    held_out_clients,
    personalised_scores,
    summarise,
    training_client,
    training_client_count,
    training_tasks,
)
from learntolearn.files import FolderLock, load_tensors, matching_checkpoint, save_tensors
from learntolearn.types import Params

client_app = ClientApp()


def _run_settings(message: Message) -> FederatedConfig:
    return FederatedConfig(**json.loads(str(_config(message)["settings"])))


def _config(message: Message) -> ConfigRecord:
    return message.content.config_records["config"]


def _arrays(message: Message) -> ArrayRecord:
    return message.content.array_records["arrays"]


def _metrics(message: Message) -> MetricRecord:
    return next(iter(message.content.metric_records.values()))


def _client_setup(context: Context) -> tuple[int, str | None]:
    torch.set_num_threads(int(context.node_config.get("threads", 1)))
    data_root = context.node_config.get("data-root") or os.environ.get("LTL_DATA")
    return int(context.node_config["partition-id"]), (str(data_root) if data_root else None)


def params_of(arrays: ArrayRecord) -> Params:
    return {name: value.float() for name, value in arrays.to_torch_state_dict().items()}


def record_bytes(arrays: ArrayRecord) -> int:
    return sum(len(array.data) for array in arrays.values())


@client_app.query()
def describe(message: Message, context: Context) -> Message:
    """Which training client this node is (its partition number), so the server can pick clients by seed."""
    partition, _ = _client_setup(context)
    return Message(RecordDict({"metrics": MetricRecord({"partition-id": partition})}), reply_to=message)


@client_app.train()
def train(message: Message, context: Context) -> Message:
    """The local computation of the run's algorithm on this client's episodes; replies with the new model."""
    config, (partition, data_root) = _run_settings(message), _client_setup(context)
    started = time.process_time()
    client = training_client(config, partition, data_root)
    loaded = time.process_time()
    round_ = cast(int, _config(message)["server-round"]) + cast(int, _config(message)["round-offset"])
    params = params_of(_arrays(message))
    tasks = training_tasks(config, client, partition, round_)
    updated = local_update(config.algorithm, config.model(), params, tasks, config.local)
    arrays = ArrayRecord({name: value.detach() for name, value in updated.items()})
    metrics: dict[str, MetricRecordValues] = {
        "num-examples": len(client.local_y),
        "cpu-seconds": time.process_time() - started,
        "data-cpu-seconds": loaded - started,  # reading the client's data when this process has not cached it
    }
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(metrics)}), reply_to=message)


@client_app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Personalised accuracy of the received model on this training client's held-out examples."""
    config, (partition, data_root) = _run_settings(message), _client_setup(context)
    client = training_client(config, partition, data_root)
    model, params = config.model(), params_of(_arrays(message))
    scores = [
        personalised_accuracy(config.algorithm, model, params, t, config.local)
        for t in evaluation_tasks(config, [client])
    ]
    metrics: dict[str, MetricRecordValues] = {"num-examples": len(scores), "accuracy": sum(scores) / len(scores)}
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)


def _sum_and_average(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """CPU seconds summed over clients, every other metric averaged with ``weight_key`` as weights."""
    metrics = [next(iter(record.metric_records.values())) for record in records]
    total = sum(cast(float, m[weight_key]) for m in metrics)
    out = MetricRecord({"clients": len(metrics)})
    for key in metrics[0]:
        if key == weight_key:
            continue
        values = [cast(float, m[key]) for m in metrics]
        weights = [cast(float, m[weight_key]) / total for m in metrics]
        out[key] = sum(values) if key.endswith("cpu-seconds") else sum(v * w for v, w in zip(values, weights))
    return out


class SeededFedAvg(FedAvg):
    """Flower's FedAvg, choosing each round's clients by partition number from the run's seed (so a resumed or
    repeated run trains the same clients), evaluating training clients every ``eval_every`` rounds, and keeping
    each round's metrics and bytes."""

    def __init__(self, config: FederatedConfig, training_clients: int, round_offset: int) -> None:
        super().__init__(
            min_train_nodes=config.clients_per_round,
            min_available_nodes=training_clients,
            train_metrics_aggr_fn=_sum_and_average,
            evaluate_metrics_aggr_fn=_sum_and_average,
        )
        self.config, self.training_clients, self.round_offset = config, training_clients, round_offset
        self.nodes: dict[int, int] = {}  # partition -> node id
        self.history: dict[int, dict[str, Any]] = {}

    def _discover(self, grid: Grid) -> None:
        while len(ids := sorted(grid.get_node_ids())) < self.training_clients:
            time.sleep(0.5)
        queries = [Message(RecordDict(), dst_node_id=node, message_type=MessageType.QUERY) for node in ids]
        for reply in grid.send_and_receive(queries, timeout=600):
            if reply.has_error():
                raise LtlError(
                    f"node {reply.metadata.src_node_id} did not say which client it is: {reply.error.reason}"
                )
            partition = cast(int, _metrics(reply)["partition-id"])
            self.nodes[partition] = reply.metadata.src_node_id
        missing = sorted(set(range(self.training_clients)) - set(self.nodes))
        if missing:
            raise LtlError(f"no node serves training clients {missing}; start one SuperNode per partition-id")

    def _absolute(self, server_round: int) -> int:
        return self.round_offset + server_round

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.nodes:
            self._discover(grid)
        absolute = self._absolute(server_round)
        chosen = random.Random(1_000_003 * self.config.seed + absolute).sample(
            range(self.training_clients), min(self.config.clients_per_round, self.training_clients)
        )
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        self.history[absolute] = {
            "round": absolute,
            "clients": sorted(chosen),
            "bytes_down": record_bytes(arrays) * len(chosen),
        }
        return self._construct_messages(record, [self.nodes[p] for p in chosen], MessageType.TRAIN)

    def _in_partition_order(self, replies: Iterable[Message]) -> list[Message]:
        """Replies sorted by training client, not by arrival: the weighted sums then add in one order, so a run
        gives the same model bit for bit however its clients' replies race (a resumed run equals a straight one)."""
        partition_of = {node: partition for partition, node in self.nodes.items()}
        return sorted(replies, key=lambda reply: partition_of.get(reply.metadata.src_node_id, -1))

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = self._in_partition_order(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        entry = self.history[self._absolute(server_round)]
        answered = [r for r in replies if not r.has_error()]
        entry["bytes_up"] = sum(record_bytes(_arrays(r)) for r in answered)
        entry["failures"] = len(entry["clients"]) - len(answered)  # error replies and clients that never answered
        entry["train"] = dict(metrics) if metrics is not None else {}
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        absolute = self._absolute(server_round)
        if absolute % self.config.eval_every and absolute != self.config.rounds:
            return []
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, [self.nodes[p] for p in sorted(self.nodes)], MessageType.EVALUATE)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        metrics = super().aggregate_evaluate(server_round, self._in_partition_order(replies))
        if metrics is not None:
            self.history[self._absolute(server_round)]["training_clients"] = dict(metrics)
        return metrics


def run_server(
    grid: Grid,
    config: FederatedConfig,
    run: Path,
    *,
    training_clients: int,
    held_out: list[Client] | None,
    log: Callable[[str], Any] = print,
    timeout: float = 3600.0,
) -> None:
    """Run ``config`` from the run folder's checkpoint (or from the start) to its last round over ``grid``,
    writing ``checkpoint.pt`` after every round; ``held_out`` clients, if given, are scored every ``eval_every``
    rounds. A client that fails or does not answer within ``timeout`` seconds is left out of its round. A round
    whose averaged model is non-finite, or whose personalisation diverges, stops the run with
    :class:`DivergedError`; the checkpoint keeps the last good round and the round that diverged."""
    state = matching_checkpoint(run, asdict(config), "federated checkpoint", length="rounds")
    if state is None:
        state = {"round": 0, "params": config.initial_params(), "history": [], "cpu_seconds": 0.0}
    if "diverged" in state:
        raise DivergedError(
            f"{run} diverged at round {state['diverged']['round']} ({state['diverged']['error']}); resuming with the "
            "same rates would diverge again: choose smaller ones (scripts/reproduce/federated_rates.py)"
        )
    if state["round"] >= config.rounds:
        log(f"{run} already holds all {config.rounds} rounds")
        return
    seeded = SeededFedAvg(config, training_clients, state["round"])
    strategy: Strategy = seeded
    if config.dp_clip > 0:  # Flower's central DP: clip each client's update, add noise to their average
        strategy = DifferentialPrivacyServerSideFixedClipping(
            seeded, config.dp_noise, config.dp_clip, config.clients_per_round
        )
        numpy.random.seed(1_000_003 * config.seed + state["round"])  # Flower draws the noise from numpy's generator
    settings = ConfigRecord({"settings": json.dumps(asdict(config)), "round-offset": state["round"]})
    history: list[dict[str, Any]] = list(state["history"])
    started = time.process_time()
    last_good: dict[str, Any] = {"config": asdict(config), **{k: state[k] for k in ("round", "params", "cpu_seconds")}}
    last_good["history"] = list(history)

    def after_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        absolute = state["round"] + server_round
        entry = seeded.history[absolute]
        params = params_of(arrays)
        try:
            if not all(bool(torch.isfinite(value).all()) for value in params.values()):
                raise FloatingPointError("the averaged model has non-finite weights")
            if held_out and (absolute % config.eval_every == 0 or absolute == config.rounds):
                scores = personalised_scores(config, params, held_out)
                entry["held_out_clients"] = summarise(scores)
                entry["held_out_scores"] = scores
        except FloatingPointError as err:  # keep the last good round's model and say where it went wrong
            diverged = {"round": absolute, "error": str(err)}
            save_tensors({**last_good, "diverged": diverged}, run / "checkpoint.pt")
            raise DivergedError(
                f"round {absolute} of {run.name} diverged ({err}); the checkpoint keeps round {last_good['round']}'s "
                "model: choose smaller rates (scripts/reproduce/federated_rates.py)"
            ) from err
        history.append(entry)
        last_good.update(
            round=absolute,
            params=params,
            history=list(history),
            cpu_seconds=state["cpu_seconds"] + time.process_time() - started,
        )
        save_tensors(last_good, run / "checkpoint.pt")
        shown = entry.get("held_out_clients", {}).get("accuracy")
        log(
            f"round {absolute}/{config.rounds}: {len(entry['clients']) - entry['failures']} of "
            f"{len(entry['clients'])} clients answered, "
            f"{(entry['bytes_down'] + entry.get('bytes_up', 0)) / 1e6:.2f} MB"
            + (f", held-out clients {100 * shown:.1f}%" if shown is not None else "")
        )
        return None

    strategy.start(
        grid,
        ArrayRecord({n: v.detach() for n, v in state["params"].items()}),
        num_rounds=config.rounds - state["round"],
        timeout=timeout,
        train_config=settings,
        evaluate_config=ConfigRecord(dict(settings)),
        evaluate_fn=after_round,
    )


def simulate(
    config: FederatedConfig,
    run: Path,
    data_root: str | None = None,
    *,
    workers: int = 1,
    log: Callable[[str], Any] = print,
    score_held_out: bool = True,
) -> dict[str, Any]:
    """Run ``config`` in Flower's simulation engine, one virtual SuperNode per training client and ``workers``
    client processes at a time; resumes from the run folder's checkpoint. ``score_held_out=False`` leaves the
    held-out clients untouched (settings are chosen on the training clients' own held-out examples)."""
    from flwr.simulation import run_simulation

    training = training_client_count(config, data_root)
    held_out = held_out_clients(config, data_root) if score_held_out else None
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        run_server(grid, config, run, training_clients=training, held_out=held_out, log=log)

    run.mkdir(parents=True, exist_ok=True)
    with FolderLock(run):
        if data_root:
            os.environ["LTL_DATA"] = data_root
        run_simulation(
            server_app=server,
            client_app=client_app,
            num_supernodes=training,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": workers}},
        )
    if not (run / "checkpoint.pt").exists():
        raise LtlError(f"the simulation ended without a checkpoint in {run}; see Flower's log above")
    return load_tensors(run / "checkpoint.pt", "federated checkpoint")
