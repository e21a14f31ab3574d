"""Federated meta-learning against federated averaging on one federation (issue 25's comparison): every algorithm
trained in Flower's simulation engine with the same clients, rounds and seeds, then personalised on the same
fixed episodes of the held-out clients, so that differences are paired per episode.

    python scripts/reproduce/federated.py --data omniglot --rounds 100     (resumable: reruns continue the runs)
    python scripts/reproduce/federated.py --data omniglot --rounds 100 --algorithms fedmeta-protonet \
        --dp-clip 0.5 --dp-noise 0 0.5 2        (accuracy against the noise of central differential privacy)
    python scripts/reproduce/federated.py --data omniglot --from-results   (table and figure from the stored scores)
    python scripts/update_docs.py --write

Writes results/federated-DATA.json (every algorithm's per-episode scores on the held-out clients, its accuracy
after every evaluated round, bytes and CPU seconds per round, settings) and results/federated-DATA.md, with
provenance, and docs/figures/federated-DATA.png (held-out clients' accuracy against megabytes sent).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.errors import DivergedError
from learntolearn.experiments.plots import pyplot
from learntolearn.federated.app import simulate
from learntolearn.federated.local import ALGORITHMS
from learntolearn.federated.runs import preset
from learntolearn.files import load_tensors, write_json, write_text

ROOT = Path(__file__).resolve().parents[2]
NAMES = {
    "fedavg": "FedAvg (global model, no personalisation)",
    "fedavg-ft": "FedAvg + fine-tuning",
    "per-fedavg-fo": "Per-FedAvg, first order",
    "per-fedavg-hf": "Per-FedAvg, Hessian-free",
    "fedmeta-maml": "FedMeta (MAML)",
    "fedmeta-protonet": "FedMeta (ProtoNets)",
}
REFERENCE = "fedavg-ft"


def rounds_to_reach(history: list[dict], target: float) -> int | None:
    for entry in history:
        if "held_out_clients" in entry and entry["held_out_clients"]["accuracy"] >= target:
            return entry["round"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["omniglot", "clinc150", "fashion"], required=True)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--dp-clip", type=float, default=None, help="Clipping norm: one algorithm at each noise level.")
    parser.add_argument("--dp-noise", type=float, nargs="+", default=[0.0], help="Noise multipliers with --dp-clip.")
    parser.add_argument("--from-results", action="store_true", help="Only redraw the table and figure.")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args()
    name = f"federated-{args.data}" + ("-dp" if args.dp_clip is not None else "")
    if args.from_results:
        rows = json.loads((args.out / f"{name}.json").read_text())["rows"]
        reference = REFERENCE if args.dp_clip is None else args.algorithms[0]
        write_text(args.out / f"{name}.md", table(rows, reference))
        figure(rows, args.figures / f"{name}.png")
        return
    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    rows = {}
    runs = [(algorithm, None) for algorithm in args.algorithms]
    if args.dp_clip is not None:
        runs = [(args.algorithms[0], None)] + [(args.algorithms[0], noise) for noise in args.dp_noise]
    for algorithm, noise in runs:
        config = preset(f"{algorithm}-{args.data}", rounds=args.rounds)
        key, label, folder = algorithm, NAMES[algorithm], config.name
        if noise is not None:
            config = replace(config, dp_clip=args.dp_clip, dp_noise=noise)
            key = f"{algorithm}, noise {noise:g}"
            label = f"{NAMES[algorithm]}, updates clipped to {args.dp_clip:g}, noise multiplier {noise:g}"
            folder = f"{config.name}-dp{args.dp_clip:g}-noise{noise:g}"
        started = time.time()
        try:
            state = simulate(config, args.runs / folder, args.data_root, workers=args.workers)
        except DivergedError as err:  # reported as such, with its curve up to the last good round
            print(f"{key}: {err}")
            state = load_tensors(args.runs / folder / "checkpoint.pt", "federated checkpoint")
        history = state["history"]
        rows[key] = {
            "name": label,
            "config": state["config"],
            "rounds": state["round"],
            "diverged": state.get("diverged"),
            "scores": None if "diverged" in state else history[-1]["held_out_scores"],
            "curve": [
                {"round": h["round"], **h["held_out_clients"], "training_clients": h.get("training_clients")}
                for h in history
                if "held_out_clients" in h
            ],
            "bytes_per_round": history[-1]["bytes_down"] + history[-1]["bytes_up"],
            "client_cpu_seconds": sum(h["train"].get("cpu-seconds", 0.0) for h in history),
            "server_cpu_seconds": state["cpu_seconds"],
            "wall_seconds_this_sitting": time.time() - started,
        }
        write_json(args.out / f"{name}.json", {"rows": rows, "provenance": provenance()})
    reference = REFERENCE if args.dp_clip is None else args.algorithms[0]
    write_text(args.out / f"{name}.md", table(rows, reference))
    figure(rows, args.figures / f"{name}.png")


def figure(rows: dict[str, dict], path: Path) -> None:
    """Held-out clients' personalised accuracy (95% CI band) against the megabytes sent both ways so far."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for row in rows.values():
        megabytes = [c["round"] * row["bytes_per_round"] / 1e6 for c in row["curve"]]
        accuracy = torch.tensor([100 * c["accuracy"] for c in row["curve"]])
        ci = torch.tensor([100 * c["ci95"] for c in row["curve"]])
        (line,) = ax.plot(megabytes, accuracy, marker="o", markersize=3, label=row["name"])
        ax.fill_between(megabytes, accuracy - ci, accuracy + ci, color=line.get_color(), alpha=0.15)
    ax.set(xlabel="megabytes sent (server to clients and back)", ylabel="held-out clients' accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: dict[str, dict], reference_key: str = REFERENCE) -> str:
    reference = rows.get(reference_key)
    if reference and reference["scores"] is None:  # a diverged reference gives nothing to pair against
        reference = None
    target = sum(reference["scores"]) / len(reference["scores"]) if reference else None
    target_rounds = (
        rounds_to_reach([{"round": c["round"], "held_out_clients": c} for c in reference["curve"]], target)
        if reference and target is not None
        else None
    )
    reference_name = reference["name"] if reference else "the reference"
    out = [
        f"| algorithm | held-out clients % (95% CI) | minus {reference_name} (paired) | training clients' held-out % "
        f"| rounds to {reference_name}'s final accuracy (its rounds / these) | MB per round | client CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for algorithm, row in rows.items():
        if row.get("diverged"):
            last = row["curve"][-1] if row["curve"] else None
            seen = f"; {100 * last['accuracy']:.2f} at round {last['round']}" if last else ""
            cells = [row["name"], f"diverged at round {row['diverged']['round']}{seen}", "", "", ""]
            cells += [f"{row['bytes_per_round'] / 1e6:.2f}", f"{row['client_cpu_seconds']:.0f}"]
            out.append("| " + " | ".join(cells) + " |")
            continue
        scores = torch.tensor(row["scores"], dtype=torch.float64)
        cells = [row["name"], f"{100 * scores.mean():.2f} ± {100 * confidence_interval(scores):.2f}"]
        if reference and algorithm != reference_key:
            diff = scores - torch.tensor(reference["scores"], dtype=torch.float64)
            cells.append(f"{100 * diff.mean():+.2f} ± {100 * confidence_interval(diff):.2f}")
        else:
            cells.append("")
        trained = row["curve"][-1].get("training_clients") or {}
        cells.append(f"{100 * trained['accuracy']:.2f}" if "accuracy" in trained else "")
        reached = (
            rounds_to_reach([{"round": c["round"], "held_out_clients": c} for c in row["curve"]], target)
            if target
            else None
        )
        cells.append(
            "not reached"
            if reached is None
            else f"{reached}" + (f" ({target_rounds / reached:.2f}x)" if target_rounds else "")
        )
        cells += [f"{row['bytes_per_round'] / 1e6:.2f}", f"{row['client_cpu_seconds']:.0f}"]
        out.append("| " + " | ".join(cells) + " |")
    first = next(row for row in rows.values() if row["scores"] is not None)
    config = first["config"]
    if config["data"] == "fashion-mnist-dirichlet":
        episodes = f"{config['shots']} support examples of each class a client has, {config['queries']} queries"
    else:
        episodes = f"{config['ways']}-way {config['shots']}-shot, {config['queries']} queries a class"
    out += [
        "",
        f"{first['rounds']} rounds, {config['clients_per_round']} clients a round, {config['local_tasks']} episodes "
        f"({episodes}) per client a round; held-out clients scored on "
        f"{len(first['scores'])} fixed episodes ({config['eval_episodes']} per client), seed {config['seed']}. "
        "Rounds to a target are read every "
        f"{config['eval_every']} rounds.",
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
