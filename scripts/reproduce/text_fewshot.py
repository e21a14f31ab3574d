"""Few-shot text classification on CLINC150 intents and FewRel relations with a frozen sentence encoder.

    pip install 'learntolearn[text]'
    python scripts/reproduce/text_fewshot.py --data-root ../shared/data [--episodes 1000]

Every method is scored on the same fixed episodes per setting (seed 2, 15 queries per class), so the
differences are paired. Methods, all on all-MiniLM-L6-v2 sentence embeddings computed once:
prototypes (nearest class mean by cosine, no training), logistic regression fitted on each support
set, and a residual adapter meta-trained episodically (Prototypical Networks objective, scaled
cosine) on the meta-train classes: CLINC150's train intents for the CLINC settings, FewRel 2.0's
NYT relations for FewRel 1.0 and for FewRel 2.0's PubMed domain-adaptation set (FewRel 1.0's 64
training relations are not in the data root).
Out-of-scope rejection on CLINC150: the threshold is chosen on meta-train episodes with oos_train
queries, then applied to test episodes with 15 oos_test queries each. Writes results/text.md and
results/text.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from learntolearn.algorithms import LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet
from learntolearn.data.roots import default_cache_root
from learntolearn.data.text import load_clinc150, load_clinc150_out_of_scope, load_fewrel
from learntolearn.engine.evaluate import evaluate, paired_difference
from learntolearn.engine.provenance import provenance
from learntolearn.nn.adapter import ResidualAdapter
from learntolearn.nn.text_encoder import SentenceEncoder, encode_cached
from learntolearn.text import choose_threshold, evaluate_with_rejection, meta_train

ROOT = Path(__file__).resolve().parents[2]
QUERIES = 15
BENCHMARKS = {  # name: (meta-train loader, meta-test loader, settings (ways, shots))
    "CLINC150, unseen intents": (
        lambda r: load_clinc150(r, "intent", "train"),
        lambda r: load_clinc150(r, "intent", "test"),
        [(5, 1), (5, 5), (10, 1), (10, 5)],
    ),
    "CLINC150, unseen domains": (
        lambda r: load_clinc150(r, "domain", "train"),
        lambda r: load_clinc150(r, "domain", "test"),
        [(5, 1), (5, 5), (10, 1), (10, 5)],
    ),
    "FewRel 1.0 val (adapter: NYT)": (
        lambda r: load_fewrel(r, "val_nyt"),
        lambda r: load_fewrel(r, "val_wiki"),
        [(5, 1), (5, 5)],
    ),
    "FewRel 2.0 PubMed (adapter: NYT)": (
        lambda r: load_fewrel(r, "val_nyt"),
        lambda r: load_fewrel(r, "val_pubmed"),
        [(5, 1), (5, 5)],
    ),
}


def adapter_model(train, seed: int, steps: int) -> tuple[PrototypicalNetworks, float]:
    model = PrototypicalNetworks(ResidualAdapter(train.features.shape[1]), distance="scaled-cosine")
    started = time.process_time()
    meta_train(model, train, ways=10, shots=5, queries=10, steps=steps, lr=1e-3, seed=seed)
    return model, time.process_time() - started


def timed_evaluation(method, episodes, data):
    started = time.process_time()
    result = evaluate(method, episodes.tasks(data), progress=False)
    return result, (time.process_time() - started) / len(episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--adapter-steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=default_cache_root() / "embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    wall, origin = time.time(), provenance()  # the code as it was when the run started
    torch.manual_seed(args.seed)
    encoder = SentenceEncoder()
    encoding_started = time.process_time()
    rows, rejection = [], []
    for benchmark, (load_train, load_test, settings) in BENCHMARKS.items():
        train, test = load_train(args.data_root), load_test(args.data_root)
        train = train.with_features(encode_cached(encoder, train.texts, args.cache))
        test = test.with_features(encode_cached(encoder, test.texts, args.cache))
        adapter, adapter_seconds = adapter_model(train, args.seed, args.adapter_steps)
        methods = {
            "prototypes (frozen, cosine)": PrototypicalNetworks(nn.Identity(), distance="cosine"),
            "logistic regression (frozen)": LogisticRegressionProbe(),
            "meta-trained adapter + prototypes": adapter,
        }
        for ways, shots in settings:
            episodes = EpisodeSet.generate(test, ways, shots, QUERIES, args.episodes, TEST_EPISODE_SEED)
            results = {name: timed_evaluation(method, episodes, test) for name, method in methods.items()}
            reference = results["prototypes (frozen, cosine)"][0]
            for name, (result, seconds) in results.items():
                difference = paired_difference(result, reference) if result is not reference else None
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
                        "vs_prototypes": difference,
                        "meta_training_cpu_seconds": adapter_seconds if name.startswith("meta") else 0.0,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            if benchmark.startswith("CLINC150, unseen intents"):
                oos_train = encode_cached(encoder, load_clinc150_out_of_scope(args.data_root, "train"), args.cache)
                oos_test = encode_cached(encoder, load_clinc150_out_of_scope(args.data_root, "test"), args.cache)
                tuning = EpisodeSet.generate(train, ways, shots, QUERIES, 300, TEST_EPISODE_SEED + 1)
                for name, method in methods.items():
                    threshold = choose_threshold(method, tuning.tasks(train), oos_train, seed=args.seed)
                    result = evaluate_with_rejection(method, episodes.tasks(test), oos_test, threshold, seed=args.seed)
                    rejection.append(
                        {
                            "ways": ways,
                            "shots": shots,
                            "method": name,
                            "threshold": threshold,
                            "in_scope_accuracy": result.in_scope_accuracy.mean,
                            "in_scope_ci95": result.in_scope_accuracy.ci95,
                            "oos_recall": result.out_of_scope_recall.mean,
                            "oos_recall_ci95": result.out_of_scope_recall.ci95,
                        }
                    )
                    print(json.dumps(rejection[-1]), flush=True)
    record = {
        "rows": rows,
        "rejection": rejection,
        "episodes": args.episodes,
        "queries": QUERIES,
        "episode_seed": TEST_EPISODE_SEED,
        "seed": args.seed,
        "adapter_steps": args.adapter_steps,
        "encoder": encoder.name,
        "wall_seconds": round(time.time() - wall, 1),
        "cpu_seconds_total": round(time.process_time() - encoding_started, 1),
        "hardware": f"{torch.get_num_threads()} thread(s), {platform.machine()}",
        **origin,
    }
    args.out.mkdir(exist_ok=True)
    (args.out / "text.json").write_text(json.dumps(record, indent=2))
    (args.out / "text.md").write_text(markdown(record))


def markdown(record: dict) -> str:
    lines = [
        f"Generated by `python scripts/reproduce/text_fewshot.py` at commit `{record['commit'][:10]}` "
        f"({record['hardware']}, {record['wall_seconds'] / 60:.1f} min wall, seed {record['seed']}): "
        f"{record['episodes']} fixed episodes per setting (seed {record['episode_seed']}, {record['queries']} "
        f"queries per class), encoder {record['encoder']}, mean accuracy ± 95% CI; paired difference against "
        "frozen prototypes on the same episodes.",
        "",
        "| benchmark | setting | method | accuracy | vs prototypes | CPU ms / episode |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        diff = (
            "reference"
            if r["vs_prototypes"] is None
            else f"{100 * r['vs_prototypes'][0]:+.2f} ± {100 * r['vs_prototypes'][1]:.2f}"
        )
        lines.append(
            f"| {r['benchmark']} | {r['ways']}-way {r['shots']}-shot | {r['method']} | "
            f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f} | {diff} | {1000 * r['cpu_seconds_per_episode']:.1f} |"
        )
    adapter = next((r for r in record["rows"] if r["meta_training_cpu_seconds"]), None)
    if adapter:
        lines += [
            "",
            f"The adapter's meta-training ({record['adapter_steps']} steps of 4 episodes, 10-way 5-shot) took "
            f"{adapter['meta_training_cpu_seconds']:.0f} CPU s per benchmark.",
        ]
    if record["rejection"]:
        lines += [
            "",
            "Out-of-scope rejection, CLINC150 unseen intents (15 oos_test queries added to each test episode; "
            "threshold on the best class score chosen on 300 meta-train episodes with oos_train queries):",
            "",
            "| setting | method | threshold | in-scope accuracy | out-of-scope recall |",
            "|---|---|---|---|---|",
        ]
        for r in record["rejection"]:
            lines.append(
                f"| {r['ways']}-way {r['shots']}-shot | {r['method']} | {r['threshold']:.3f} | "
                f"{100 * r['in_scope_accuracy']:.2f} ± {100 * r['in_scope_ci95']:.2f} | "
                f"{100 * r['oos_recall']:.2f} ± {100 * r['oos_recall_ci95']:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
