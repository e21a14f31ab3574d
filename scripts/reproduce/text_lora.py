"""LoRA adaptation of the sentence encoder per task, and a Reptile-meta-learned LoRA initialisation, against
frozen prototypes on the same episodes.

    pip install 'learntolearn[lora]'
    python scripts/reproduce/text_lora.py --data-root ../shared/data [--episodes 100]

The episodes are the first ``--episodes`` of the 1,000 fixed episodes that
``scripts/reproduce/text_fewshot.py`` scores (same seed), so differences are paired. LoRA: rank 8 on
the query and value projections, 5 Adam steps of lr 1e-3 per task on the support set (chosen on 40
CLINC150 validation-intent episodes among lr 1e-3 / 5e-3 and 5 / 10 steps; none beat frozen
prototypes there by more than its CI). Meta-learned initialisation: Reptile over the LoRA tensors on
CLINC150's train intents (5-way 5-shot episodes, meta-batch 2, SGD outer step), then the same
per-task adaptation from it. Writes results/text-lora.md and .json after every setting; settings already
there with the same episode count and meta-training are kept, not rerun, and the meta-learned
initialisation is cached under --cache, so a stopped run continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from learntolearn.algorithms import PrototypicalNetworks
from learntolearn.algorithms.lora import LoRAAdaptation
from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet
from learntolearn.data.roots import default_cache_root
from learntolearn.data.text import load_clinc150, load_fewrel
from learntolearn.engine.evaluate import evaluate, paired_difference
from learntolearn.engine.provenance import provenance
from learntolearn.nn.text_encoder import SentenceEncoder, encode_cached
from learntolearn.text import meta_train

ROOT = Path(__file__).resolve().parents[2]
QUERIES, FIXED_EPISODES = 15, 1000
SETTINGS = [
    ("CLINC150, unseen intents", lambda r: load_clinc150(r, "intent", "test"), 5, 1),
    ("CLINC150, unseen intents", lambda r: load_clinc150(r, "intent", "test"), 5, 5),
    ("FewRel 1.0 val", lambda r: load_fewrel(r, "val_wiki"), 5, 1),
    ("CLINC150, unseen intents", lambda r: load_clinc150(r, "intent", "test"), 10, 1),
    ("CLINC150, unseen intents", lambda r: load_clinc150(r, "intent", "test"), 10, 5),
    ("FewRel 1.0 val", lambda r: load_fewrel(r, "val_wiki"), 5, 5),
]


def first(episodes: EpisodeSet, count: int) -> EpisodeSet:
    return dataclasses.replace(episodes, classes=episodes.classes[:count], images=episodes.images[:count])


def row_numbers(dataset):
    return dataset.with_features(torch.arange(len(dataset.texts)).unsqueeze(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--meta-iterations", type=int, default=60)
    parser.add_argument("--outer-lr", type=float, default=0.5, help="Reptile's outer step size (SGD)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=default_cache_root() / "embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    wall, origin = time.time(), provenance()  # the code as it was when the run started
    torch.manual_seed(args.seed)
    out_json = args.out / "text-lora.json"
    previous = json.loads(out_json.read_text()) if out_json.exists() else {}
    same_run = (previous.get("meta_iterations"), previous.get("outer_lr"), previous.get("seed")) == (
        args.meta_iterations,
        args.outer_lr,
        args.seed,
    )
    rows = [r for r in previous.get("rows", []) if same_run and r["episodes"] == args.episodes]
    done = {(r["benchmark"], r["ways"], r["shots"]) for r in rows}
    meta, meta_seconds, losses = meta_learned_initialisation(args)
    encoder = SentenceEncoder()
    for benchmark, load, ways, shots in SETTINGS:
        if (benchmark, ways, shots) in done:
            continue
        test = load(args.data_root)
        features = test.with_features(encode_cached(encoder, test.texts, args.cache))
        episodes = first(
            EpisodeSet.generate(test, ways, shots, QUERIES, FIXED_EPISODES, TEST_EPISODE_SEED), args.episodes
        )
        per_task = LoRAAdaptation(SentenceEncoder(), test.texts)
        meta_learned = LoRAAdaptation(SentenceEncoder(), test.texts)
        meta_learned.lora.load_state_dict(meta)
        methods = {
            "prototypes (frozen, cosine)": (PrototypicalNetworks(nn.Identity(), distance="cosine"), features),
            "LoRA per task": (per_task, row_numbers(test)),
            "LoRA per task from Reptile init": (meta_learned, row_numbers(test)),
        }
        results = {}
        for name, (method, data) in methods.items():
            began = time.process_time()
            results[name] = (
                evaluate(method, episodes.tasks(data), progress=False),
                (time.process_time() - began) / len(episodes),
            )
        reference = results["prototypes (frozen, cosine)"][0]
        for name, (result, seconds) in results.items():
            rows.append(
                {
                    "benchmark": benchmark,
                    "ways": ways,
                    "shots": shots,
                    "method": name,
                    "accuracy": result.mean,
                    "ci95": result.ci95,
                    "episodes": len(episodes),
                    "cpu_seconds_per_episode": seconds,
                    "vs_prototypes": None if result is reference else paired_difference(result, reference),
                    "commit": origin["commit"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        write(args, rows, meta_seconds, losses, origin, time.time() - wall + previous.get("wall_seconds", 0.0))


def meta_learned_initialisation(args) -> tuple[dict, float, list[float]]:
    """Reptile over LoRA tensors on CLINC150's train intents, cached by its settings."""
    path = args.cache / f"reptile-lora-{args.meta_iterations}-{args.outer_lr}-{args.seed}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["lora"], saved["cpu_seconds"], saved["losses"]
    train = load_clinc150(args.data_root, "intent", "train")
    meta = LoRAAdaptation(SentenceEncoder(), train.texts)
    started = time.process_time()
    losses = meta_train(
        meta,
        row_numbers(train),
        ways=5,
        shots=5,
        queries=5,
        steps=args.meta_iterations,
        lr=args.outer_lr,
        meta_batch=2,
        seed=args.seed,
        outer_optimizer="sgd",
    )
    state = {"lora": meta.lora.state_dict(), "cpu_seconds": time.process_time() - started, "losses": losses}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_name(path.name + ".tmp"))
    path.with_name(path.name + ".tmp").replace(path)
    return state["lora"], state["cpu_seconds"], losses


def write(args, rows: list[dict], meta_seconds: float, losses: list[float], origin: dict, wall_seconds: float) -> None:
    record = {
        "rows": rows,
        "meta_iterations": args.meta_iterations,
        "outer_lr": args.outer_lr,
        "meta_training_cpu_seconds": round(meta_seconds, 1),
        "meta_losses": losses,
        "seed": args.seed,
        "episode_seed": TEST_EPISODE_SEED,
        "wall_seconds": round(wall_seconds, 1),
        "hardware": f"{torch.get_num_threads()} thread(s), {platform.machine()}",
        **origin,
    }
    args.out.mkdir(exist_ok=True)
    (args.out / "text-lora.json").write_text(json.dumps(record, indent=2))
    commits = sorted({r.get("commit", origin["commit"])[:10] for r in rows})
    lines = [
        f"Generated by `python scripts/reproduce/text_lora.py --episodes {args.episodes}` at commit(s) "
        f"{', '.join(f'`{c}`' for c in commits)} ({record['hardware']}, {wall_seconds / 60:.1f} min wall in all, "
        f"seed {args.seed}): the first {args.episodes} of the fixed episodes above, {QUERIES} queries per class. "
        f"Reptile meta-training: {args.meta_iterations} iterations, {meta_seconds / 60:.1f} CPU min.",
        "",
        "| benchmark | setting | method | accuracy | vs prototypes | CPU s / episode |",
        "|---|---|---|---|---|---|",
    ]
    order = {(b, w, k): i for i, (b, _, w, k) in enumerate(SETTINGS)}
    for r in sorted(rows, key=lambda r: order[(r["benchmark"], r["ways"], r["shots"])]):
        diff = (
            "reference"
            if r["vs_prototypes"] is None
            else f"{100 * r['vs_prototypes'][0]:+.2f} ± {100 * r['vs_prototypes'][1]:.2f}"
        )
        lines.append(
            f"| {r['benchmark']} | {r['ways']}-way {r['shots']}-shot | {r['method']} | "
            f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f} | {diff} | {r['cpu_seconds_per_episode']:.2f} |"
        )
    (args.out / "text-lora.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
