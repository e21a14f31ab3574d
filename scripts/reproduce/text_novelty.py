"""Rejecting out-of-scope texts from five examples per intent: a threshold you guess against one from the examples.

    pip install 'learntolearn[text]'
    python scripts/reproduce/text_novelty.py --data-root ../shared/data [--episodes 500]

The setting of ``ltl adapt --support examples.csv`` with its default method: 5 of CLINC150's unseen
(test-split) intents, 5 examples each, a logistic regression on all-MiniLM-L6-v2 embeddings labels
10 in-scope queries per intent and 50 out-of-scope queries (oos_test) per episode, drawn with a
fixed seed, so every rule is scored on the same queries (paired). Rules: no rejection;
``--reject-below 0.5`` on the logistic probability; ``--reject-novel`` (the threshold chosen from the
examples by leave-one-out, :mod:`learntolearn.engine.novelty`). In-scope accuracy counts a rejected
in-scope query as wrong; out-of-scope recall is the share of out-of-scope queries rejected. Writes
results/text-novelty.json (per-episode scores, provenance) and results/text-novelty.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from learntolearn.algorithms import LogisticRegressionProbe
from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet
from learntolearn.data.roots import default_cache_root
from learntolearn.data.text import load_clinc150_features, load_clinc150_out_of_scope
from learntolearn.engine.evaluate import Evaluation, adapt_and_predict, paired_difference
from learntolearn.engine.novelty import NoveltyTest
from learntolearn.engine.provenance import provenance
from learntolearn.files import write_json, write_text
from learntolearn.nn.text_encoder import SentenceEncoder, encode_cached

ROOT = Path(__file__).resolve().parents[2]
WAYS, SHOTS, QUERIES, OUT_OF_SCOPE = 5, 5, 10, 50
RULES = ("no rejection", "reject below 0.5", "reject novel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    started, origin = time.process_time(), provenance()
    intents = load_clinc150_features("intent", "test", data_root=args.data_root)
    out_of_scope = encode_cached(
        SentenceEncoder(), load_clinc150_out_of_scope(args.data_root, "test"), default_cache_root() / "features"
    )
    episodes = EpisodeSet.generate(intents, WAYS, SHOTS, QUERIES, args.episodes, TEST_EPISODE_SEED)
    generator = torch.Generator().manual_seed(TEST_EPISODE_SEED)
    probe = LogisticRegressionProbe()
    accuracy: dict[str, list[float]] = {rule: [] for rule in RULES}
    recall: dict[str, list[float]] = {rule: [] for rule in RULES}
    for task in episodes.tasks(intents):
        extra = out_of_scope[torch.randperm(len(out_of_scope), generator=generator)[:OUT_OF_SCOPE]]
        queries = torch.cat([task.query_x, extra])
        probability, predicted = adapt_and_predict(probe, task.support_x, task.support_y, queries).softmax(-1).max(-1)
        novelty = NoveltyTest.fit(task.support_x, task.support_y)
        rejected = {
            "no rejection": torch.zeros(len(queries), dtype=torch.bool),
            "reject below 0.5": probability < 0.5,
            "reject novel": novelty.is_novel(novelty.similarity(queries)),
        }
        n = len(task.query_y)
        for rule, rejects in rejected.items():
            accuracy[rule].append(float(((predicted[:n] == task.query_y) & ~rejects[:n]).double().mean()))
            recall[rule].append(float(rejects[n:].double().mean()))
    rows = []
    for rule in RULES:
        in_scope, oos = Evaluation(torch.tensor(accuracy[rule])), Evaluation(torch.tensor(recall[rule]))
        rows.append(
            {
                "rule": rule,
                "in_scope_accuracy": in_scope.mean,
                "in_scope_ci95": in_scope.ci95,
                "out_of_scope_recall": oos.mean,
                "out_of_scope_ci95": oos.ci95,
            }
        )
    novel = Evaluation(torch.tensor(accuracy["reject novel"]))
    below = Evaluation(torch.tensor(accuracy["reject below 0.5"]))
    record = {
        "setting": f"CLINC150 test intents, {WAYS}-way {SHOTS}-shot, {QUERIES} in-scope queries per intent and "
        f"{OUT_OF_SCOPE} oos_test queries per episode, logistic regression on all-MiniLM-L6-v2",
        "episodes": args.episodes,
        "episode_seed": TEST_EPISODE_SEED,
        "rows": rows,
        "paired_in_scope_difference_novel_minus_below": paired_difference(novel, below),
        "per_episode": {"in_scope_accuracy": accuracy, "out_of_scope_recall": recall},
        "cpu_seconds": round(time.process_time() - started, 1),
        **origin,
    }
    write_json(args.out / "text-novelty.json", record)
    write_text(args.out / "text-novelty.md", markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    lines = [
        f"{record['setting']}; {record['episodes']} episodes (seed {record['episode_seed']}), mean ± 95% CI:",
        "",
        "| rule | in-scope accuracy (rejected = wrong) | out-of-scope recall |",
        "|---|---|---|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['rule']} | {100 * row['in_scope_accuracy']:.1f} ± {100 * row['in_scope_ci95']:.1f} | "
            f"{100 * row['out_of_scope_recall']:.1f} ± {100 * row['out_of_scope_ci95']:.1f} |"
        )
    lines += [
        "",
        f"Commit `{record['commit'][:10]}`, torch {record['torch']}, {record['threads']} thread(s), "
        f"{record['cpu_seconds']} CPU seconds (after the embeddings were cached).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
