"""Print the README's benchmark tables from the latest records in benchmarks/results/*.jsonl.

    python scripts/benchmark_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def latest(name: str) -> dict[str, dict]:
    path = RESULTS / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {r["setting"]: r for r in records}


def main() -> None:
    rows = latest("episode_sampling")
    if rows:
        print("| episodes | learntolearn episodes/s | per-image loop episodes/s | speed-up | commit, threads |")
        print("|---|---|---|---|---|")
        for setting, r in rows.items():
            print(f"| {setting} | {r['episodes_per_s']:,.0f} | {r['per_image_loop_episodes_per_s']:,.0f} | "
                  f"{r['speedup']}x | `{r['commit'][:10]}`, {r['threads']} |")
        print()
    rows = latest("maml_paths")
    if rows:
        print("| second-order MAML, one inner step | task loop it/s | vmapped it/s | vmapped / loop | commit, threads |")
        print("|---|---|---|---|---|")
        for setting, r in rows.items():
            print(f"| {setting} | {r['loop_iterations_per_s']} | {r['vmapped_iterations_per_s']} | "
                  f"{r['vmapped_over_loop']}x | `{r['commit'][:10]}`, {r['threads']} |")
        print()
    rows = latest("maml_peers")
    for setting, r in rows.items():
        print(f"Second-order MAML, {setting} (meta-iterations/s, median of interleaved rounds, "
              f"commit `{r['commit'][:10]}`, {r['threads']} thread(s)):\n")
        print("| implementation | meta-iterations/s |")
        print("|---|---|")
        for name, rate in r["meta_iterations_per_s"].items():
            print(f"| {name} | {rate} |")
        for name, why in r["missing"].items():
            print(f"| {name} | {why} |")
        print()


if __name__ == "__main__":
    main()
