"""The SCAN table: every (method, split) we ran, each seed's exact-match accuracy, the mean with a 95% interval
over seeds, CPU time, commits, and the paper's figure with the gap.

    python scripts/reproduce/scan_table.py [--train-missing --data-root ../shared/data]
    python scripts/update_docs.py --write   # puts results/scan.md into docs/results.md

Reads results/scan-*.json (written by scripts/reproduce/scan.py, one file per run with
per-command correctness); ``--train-missing`` first runs the planned seeds that have no result yet, one after
another (each run resumes from its checkpoint). Runs with different settings are separate rows.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from learntolearn.compositional.scan_runs import preset as scan_preset
from learntolearn.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
#: (preset, protocol) -> seeds planned by --train-missing
PLAN = {
    ("metaseq2seq-scan-addjump", "lake2019"): (0, 1, 2),
    ("metaseq2seq-scan-aroundright", "lake2019"): (0, 1, 2),
    ("seq2seq-scan-addjump", None): (0, 1, 2),
    ("transformer-scan-addjump", None): (0, 1, 2),
    ("transformer-scan-aroundright", None): (0, 1, 2),
    ("transformer-scan-length", None): (0, 1, 2),
    # MLC at this budget never learns its own episodes (results page): more seeds or splits wait for a longer run
    ("mlc-scan-addjump", None): (0,),
}
#: (method, split) -> (paper figure in %, where it is from); checked against the papers' tables
PAPER = {
    ("meta-seq2seq", "addprim_jump"): (99.95, "Lake 2019, Table 2 (permutation meta-training)"),
    ("meta-seq2seq", "template_around_right"): (99.9, "meta seq2seq, as listed by Kim 2021, Table 1"),
    ("seq2seq", "addprim_jump"): (1.7, "RNN seq2seq, as listed by Kim 2021 (Neural QCFG), Table 1"),
    ("transformer", "addprim_jump"): (1.0, "Transformer, as listed by Kim 2021, Table 1"),
    ("transformer", "template_around_right"): (53.3, "Transformer, as listed by Kim 2021, Table 1"),
    ("transformer", "length"): (0.0, "Transformer, as listed by Kim 2021, Table 1"),
}
NAMES = {
    "meta-seq2seq": "meta seq2seq (Lake 2019)",
    "meta seq2seq": "meta seq2seq (Lake 2019)",
    "seq2seq": "seq2seq (attention LSTM, no memory)",
    "transformer": "transformer seq2seq",
    "mlc": "MLC (Lake & Baroni 2023)",
}
#: two-sided 95% Student t quantiles by degrees of freedom (seeds - 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def setting(record: dict) -> str:
    """The settings that make runs comparable; records before the config field carry them at the top level."""
    config = record.get("config") or {"layers": 1, "dropout": 0.1, **record, "steps": record.get("episodes")}
    method = record["method"].replace(" ", "-")
    protocol = record.get("protocol") or ("primitives-alone" if method == "meta-seq2seq" else None)
    network = "transformer" if method in ("transformer", "mlc") else "LSTM"
    if method in ("meta-seq2seq", "seq2seq"):  # records before the field used network version 1
        network += f" v{record.get('network_version') or 1}"
    if protocol:
        source = f"{protocol} protocol"
    elif method == "mlc":
        source = f"one-query episodes, {config['study']} study commands in the source"
    else:
        source = "training commands"
    return "; ".join(
        [
            source,
            f"{config['layers']}x{config['hidden']} {network}, dropout {config['dropout']}"
            + (
                f" (attention weights {config['attention_dropout']})"
                if config.get("attention_dropout") is not None
                else ""
            )
            + f", {config['steps']:,} steps",
        ]
    )


def rows() -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(RESULTS.glob("scan-*.json")):
        record = json.loads(path.read_text())
        method = record["method"].replace(" ", "-")
        groups.setdefault((method, record["split"], setting(record)), []).append(record)
    out = []
    for (method, split, described), records in sorted(groups.items()):
        accuracies = [100 * r["accuracy"] for r in sorted(records, key=lambda r: r["seed"])]
        mean = sum(accuracies) / len(accuracies)
        n = len(accuracies)
        sd = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (n - 1)) if n > 1 else float("nan")
        paper, source = PAPER.get((method, split), (None, None))
        if method == "meta-seq2seq" and "primitives-alone" in described:
            paper, source = None, None  # a stricter protocol than the paper's: no paper figure applies
        out.append(
            {
                "method": method,
                "split": split,
                "setting": described,
                "seeds": [r["seed"] for r in sorted(records, key=lambda r: r["seed"])],
                "accuracies": [round(a, 2) for a in accuracies],
                "mean": round(mean, 2),
                "ci95": round(T95.get(n - 1, 1.96) * sd / math.sqrt(n), 2) if n > 1 else None,
                "test_commands": records[0]["test_commands"],
                "cpu_seconds": round(sum(r["cpu_seconds"] for r in records)),
                "commits": sorted({r["commit"][:10] for r in records}),
                "paper": paper,
                "paper_source": source,
                "gap": round(mean - paper, 2) if paper is not None else None,
            }
        )
    return out


def markdown(table: list[dict]) -> str:
    lines = [
        "Generated by `python scripts/reproduce/scan_table.py` from `results/scan-*.json` (one file per run,",
        "with per-command correctness). Exact match on the split's whole test set, greedy decoding; the",
        "interval is Student's t over seeds (none for one seed). CPU seconds are summed over seeds, one thread",
        "each, 2-core x86_64.",
        "",
        "| method | split | setting | seeds | accuracy per seed | mean (95% CI) | paper | gap | CPU s | commit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        interval = f"{r['mean']:.2f}" + (f" ± {r['ci95']:.2f}" if r["ci95"] is not None else "")
        paper = f"{r['paper']} ({r['paper_source']})" if r["paper"] is not None else "—"
        gap = f"{r['gap']:+.2f}" if r["gap"] is not None else "—"
        lines.append(
            f"| {NAMES.get(r['method'], r['method'])} | {r['split']} | {r['setting']} | {len(r['seeds'])} | "
            f"{', '.join(f'{a:.2f}' for a in r['accuracies'])} | {interval} | {paper} | {gap} | "
            f"{r['cpu_seconds']:,} | {', '.join(f'`{c}`' for c in r['commits'])} |"
        )
    return "\n".join(lines) + "\n"


def train_missing(data_root: str | None) -> None:
    for (preset, protocol), seeds in PLAN.items():
        for seed in seeds:
            if (RESULTS / f"{scan_preset(preset, seed=seed, protocol=protocol).name}.json").exists():
                continue
            command = [sys.executable, str(ROOT / "scripts/reproduce/scan.py"), "--preset", preset]
            command += ["--seed", str(seed)] + (["--protocol", protocol] if protocol else [])
            command += ["--data-root", data_root] if data_root else []
            print("running", " ".join(command), flush=True)
            subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-missing", action="store_true", help="Run the planned seeds without a result first.")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    if args.train_missing:
        train_missing(args.data_root)
    table = rows()
    write_json(RESULTS / "scan.json", {"rows": table})
    write_text(RESULTS / "scan.md", markdown(table))
    print(markdown(table))


if __name__ == "__main__":
    main()
