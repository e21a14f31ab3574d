"""The ServerApp of a real Flower deployment (``flwr run apps/federated``): the same server loop as the
simulation, its settings from the run configuration, and no data on the server (held-out clients are scored
afterwards by whoever holds them, with ``ltl federated status``'s checkpoint).

Run configuration keys (``[tool.flwr.app.config]`` of ``apps/federated/pyproject.toml``, or ``flwr run
--run-config``): ``preset``, ``rounds``, ``clients-per-round``, ``supernodes`` (SuperNodes started with
``partition-id`` 0 .. supernodes-1), ``run-dir`` (the server's run folder, absolute), ``round-timeout`` (seconds a
round waits for a client before leaving it out) and ``seed``."""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from learntolearn.errors import ConfigError
from learntolearn.federated.app import run_server
from learntolearn.federated.runs import preset
from learntolearn.files import FolderLock

server_app = ServerApp()
logger = logging.getLogger("learntolearn.federated")


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    settings = context.run_config
    missing = sorted({"preset", "supernodes", "run-dir"} - set(settings))
    if missing:
        raise ConfigError(f"the run configuration lacks {', '.join(missing)}; pass them with flwr run --run-config")
    config = preset(
        str(settings["preset"]),
        rounds=int(settings.get("rounds", 0)) or None,
        clients_per_round=int(settings.get("clients-per-round", 0)) or None,
        seed=int(settings.get("seed", 0)),
    )
    run = Path(str(settings["run-dir"]))
    run.mkdir(parents=True, exist_ok=True)
    with FolderLock(run):
        run_server(
            grid,
            config,
            run,
            training_clients=int(settings["supernodes"]),
            held_out=None,
            log=lambda line: logger.warning(line),
            timeout=float(settings.get("round-timeout", 600.0)),
        )
