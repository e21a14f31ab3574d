"""``ltl federated``: federated meta-learning on Flower (simulation on this machine, or a real deployment)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from learntolearn.cli.families import check_run_of
from learntolearn.cli.options import data_root_option, threads_option
from learntolearn.errors import LtlError
from learntolearn.federated.runs import PRESETS, preset


def _flower():
    try:
        from learntolearn.federated import app
    except ImportError as err:
        raise LtlError(f"federated runs need Flower ({err}); pip install 'learntolearn[federated]'") from err
    return app


@click.group()
def federated() -> None:
    """Federated meta-learning on Flower: `ltl federated run PRESET` (resumable), `ltl federated status RUN`."""


@federated.command()
@click.argument("preset_name", metavar="PRESET", type=click.Choice(sorted(PRESETS)))
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder [runs/<name>].")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Communication rounds in all.")
@click.option("--clients-per-round", type=click.IntRange(min=1), default=None)
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=None, help="Fashion-MNIST label skew.")
@click.option("--seed", type=int, default=None)
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="FedAvg's local / Per-FedAvg's outer rate."
)
@click.option(
    "--inner-lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="MAML's and Per-FedAvg's inner rate, and the personalisation rate.",
)
@click.option("--meta-lr", type=click.FloatRange(min=0, min_open=True), default=None, help="FedMeta's meta rate.")
@click.option(
    "--dp-clip",
    type=click.FloatRange(min=0),
    default=None,
    help="Central differential privacy: clip each client's update to this L2 norm (Flower's DP wrapper).",
)
@click.option("--dp-noise", type=click.FloatRange(min=0), default=None, help="Noise multiplier with --dp-clip.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Client processes running at once."
)
@click.option("--verbose", is_flag=True, help="Show Flower's own log.")
@threads_option
@data_root_option
def run(
    preset_name: str,
    run_dir: str | None,
    rounds: int | None,
    clients_per_round: int | None,
    alpha: float | None,
    seed: int | None,
    lr: float | None,
    inner_lr: float | None,
    meta_lr: float | None,
    dp_clip: float | None,
    dp_noise: float | None,
    workers: int,
    verbose: bool,
    data_root: str | None,
) -> None:
    """Run a preset in Flower's simulation engine (one virtual SuperNode per training client), or continue it
    from its last round; held-out clients are scored every `eval_every` rounds and at the end."""
    config = preset(
        preset_name,
        rounds=rounds,
        clients_per_round=clients_per_round,
        alpha=alpha,
        seed=seed,
        lr=lr,
        inner_lr=inner_lr,
        meta_lr=meta_lr,
        dp_clip=dp_clip,
        dp_noise=dp_noise,
    )
    run_folder = Path(run_dir or Path("runs") / config.name)
    check_run_of(run_folder, "ltl federated")
    app = _flower()
    if not verbose:
        logging.getLogger("flwr").setLevel(logging.WARNING)
    state = app.simulate(config, run_folder, data_root, workers=workers, log=click.echo)
    _summary(state)


@federated.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def status(run_dir: str) -> None:
    """Rounds done, bytes sent and the held-out clients' personalised accuracy of a run folder."""
    from learntolearn.files import load_tensors

    check_run_of(Path(run_dir), "ltl federated")
    _summary(load_tensors(Path(run_dir) / "checkpoint.pt", "federated checkpoint"))


def _summary(state: dict) -> None:
    history = state["history"]
    sent = sum(h["bytes_down"] + h.get("bytes_up", 0) for h in history)
    click.echo(f"{state['config']['name']}: {state['round']} rounds, {sent / 1e6:.1f} MB sent and received")
    scored = [h for h in history if "held_out_clients" in h]
    if scored:
        last = scored[-1]["held_out_clients"]
        click.echo(
            f"held-out clients after round {scored[-1]['round']}: {100 * last['accuracy']:.2f}% "
            f"± {100 * last['ci95']:.2f} over {last['episodes']} episodes"
        )
    if "diverged" in state:
        click.echo(f"diverged at round {state['diverged']['round']}: {state['diverged']['error']}")


@federated.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--nodes", type=click.IntRange(min=1), default=2, show_default=True, help="SuperNode key pairs.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=["localhost", "127.0.0.1"],
    show_default=True,
    help="Names and addresses the SuperLink is reached at (repeatable).",
)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite certificates and keys already in FOLDER.")
def certificates(folder: str, nodes: int, hosts: tuple[str, ...], days: int, force: bool) -> None:
    """A certificate authority, the SuperLink's TLS certificate and SuperNode key pairs for a deployment."""
    from learntolearn.federated.certificates import make_certificates

    for path in make_certificates(Path(folder), nodes, list(hosts), days, force):
        click.echo(path)
