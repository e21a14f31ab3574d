"""OML and ANML on Omniglot's class-incremental protocol: learn C new characters one after another (15 drawings
each, one optimiser step per drawing, one pass), then accuracy on all C characters' 15 training drawings
(memorisation) and 5 held-out drawings (generalisation), against online learning from scratch, a network
pretrained on the same background characters and fine-tuned online (its output layer; the whole network),
and nearest class means of the pretrained features (which cannot forget).

    ltl continual train oml-omniglot && ltl continual train anml-omniglot
    python scripts/reproduce/continual_omniglot.py --run runs/oml-omniglot --run runs/anml-omniglot
    python scripts/update_docs.py --write

Every method's online rate is chosen on meta-validation characters (background characters the runs did not
meta-train on); every method then sees the same evaluation characters in the same orders. Writes
results/continual-omniglot.json (per order and C: both accuracies, per method; the rates; each run's
settings, steps and CPU time) and results/continual-omniglot.md, with provenance.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from learntolearn.continual.layers import with_fresh_output
from learntolearn.continual.runs import ContinualRunConfig, network, omniglot_classes, pretrain
from learntolearn.continual.stream import Learner, NearestMean, OnlineLearner, choose_rate, continual_curves, deal
from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.experiments.plots import plot_continual_curves
from learntolearn.files import load_tensors, write_json, write_text
from learntolearn.nn.functional import conv_stack

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, action="append", default=[], help="An OML or ANML run; repeatable.")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 50, 100, 200, 600])
    parser.add_argument("--orders", type=int, default=10, help="Random class orders per C.")
    parser.add_argument("--validation-classes", type=int, default=50, help="C when choosing each online rate.")
    parser.add_argument("--validation-orders", type=int, default=3)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--pretrain-steps", type=int, default=5000)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--from-results", action="store_true", help="Only redraw the table and figure.")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.from_results:
        write_outputs(json.loads((args.out / "continual-omniglot.json").read_text()), args.out, args.figures)
        return
    if not args.run:
        raise SystemExit("give at least one --run (an OML or ANML run folder)")
    torch.set_num_threads(1)
    started = time.process_time()
    states = [load_tensors(run / "checkpoint.pt", "continual checkpoint") for run in args.run]
    configs = [ContinualRunConfig(**state["config"]) for state in states]
    background = omniglot_classes("background", args.data_root)
    meta_training, validation = background[: configs[0].meta_train_classes], background[configs[0].meta_train_classes :]
    evaluation = deal(omniglot_classes("evaluation", args.data_root), 15, args.seed)
    held = deal(validation, 15, args.seed)
    fresh = torch.Generator().manual_seed(args.seed)

    methods: dict[str, Callable[[float], Learner]] = {}
    for config, state in zip(configs, states):
        net = network(config)
        start = with_fresh_output(dict(state["params"]), net.output, fresh)
        methods[config.algorithm.upper()] = partial(
            OnlineLearner, net.logits, start, net.meta_test_fast, optimizer=args.optimizer
        )
    baseline = replace(configs[0], algorithm="oml")  # the OML-shaped network for the baselines
    base = network(baseline)
    methods["online from scratch (whole network)"] = lambda lr: OnlineLearner(
        base.logits, base.params, tuple(base.params), lr, optimizer=args.optimizer
    )
    pretrained = pretrain(baseline, meta_training, args.pretrain_steps)
    pretrained_start = with_fresh_output(pretrained, base.output, fresh)
    methods["pretrained, output layer fine-tuned"] = lambda lr: OnlineLearner(
        base.logits, pretrained_start, (f"{base.output}.weight", f"{base.output}.bias"), lr, optimizer=args.optimizer
    )
    methods["pretrained, whole network fine-tuned"] = lambda lr: OnlineLearner(
        base.logits, pretrained_start, tuple(pretrained_start), lr, optimizer=args.optimizer
    )

    rates = {
        name: choose_rate(make, held, args.validation_classes, args.validation_orders, args.seed)
        for name, make in methods.items()
    }
    print("online rates chosen on meta-validation:", rates, flush=True)
    learners: dict[str, Callable[[], Learner]] = {name: partial(make, rates[name]) for name, make in methods.items()}
    learners["nearest class mean of pretrained features"] = lambda: NearestMean(
        lambda x: conv_stack(pretrained, "rln", x)
    )
    results = {
        name: continual_curves(make, evaluation, args.classes, args.orders, args.seed + 1000)
        for name, make in learners.items()
    }
    cpu = round(time.process_time() - started, 1)
    record = {
        "runs": [
            {"run": str(run), "config": state["config"], "steps": state["step"], "cpu_seconds": state["cpu_seconds"]}
            for run, state in zip(args.run, states)
        ],
        "classes": args.classes,
        "orders": args.orders,
        "optimizer": args.optimizer,
        "rates": rates,
        "pretrain_steps": args.pretrain_steps,
        "results": results,
        "cpu_seconds": cpu,
        **provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "continual-omniglot.json", record)
    write_outputs(record, args.out, args.figures)


def write_outputs(record: dict[str, Any], out: Path, figures: Path) -> None:
    """The table (results/continual-omniglot.md) and the figure of curves from a scored record."""
    results, classes, rates, cpu = record["results"], record["classes"], record["rates"], record["cpu_seconds"]
    runs = ", ".join(
        f"{r['config']['name']} {r['steps']:,} steps ({r['cpu_seconds']:,.0f} CPU s)" for r in record["runs"]
    )
    lines = [
        f"Generated by `python scripts/reproduce/continual_omniglot.py` at commit `{record['commit'][:10]}` ({cpu:,} CPU s "
        f"to evaluate, 2-core x86_64). Meta-trained: {runs}. Omniglot evaluation characters, 15 drawings learnt per "
        f"character ({record['optimizer']}, one step each, one pass), {record['orders']} random orders per C; accuracy (%) with a "
        "normal 95% interval over orders; each learner's online rate chosen on meta-validation characters "
        f"({', '.join(f'{n}: {r}' for n, r in rates.items())}).",
    ]
    for key in ("memorisation", "generalisation"):
        lines += [
            "",
            f"{key.capitalize()} (held-out drawings)"
            if key == "generalisation"
            else "Memorisation (the drawings learnt)",
            "",
        ]
        lines += [
            "| learner | " + " | ".join(f"C={c}" for c in classes) + " |",
            "|---|" + "---|" * len(classes),
        ]
        for name, per_count in results.items():
            cells = []
            for count in classes:
                values = torch.tensor(per_count[str(count)][key]) * 100
                cells.append(f"{values.mean():.1f} ± {confidence_interval(values):.1f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text(out / "continual-omniglot.md", "\n".join(lines) + "\n")
    try:
        print("figure:", plot_continual_curves(results, figures / "continual-omniglot.png"))
    except ImportError as err:
        print(err)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
