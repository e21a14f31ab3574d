"""Tokens per second of the SCAN sequence models: training, and greedy decoding with and without a KV cache.

    python benchmarks/seq2seq_decoding.py --data-root ../shared/data

The networks of the presets `transformer-scan-addjump` (2+2 layers of 128) and `metaseq2seq-scan-addjump`
(2-layer LSTMs of 200), random weights with the end token suppressed so that every command decodes the
full 48 actions (what decoding costs does not depend on the weights). Decoding: 256 add-jump test
commands; the transformer's KV cache against recomputing the whole prefix every step (the tokens must be
identical); meta seq2seq with the four primitives as study examples. Training: forward+backward of one
batch (32 training commands for the transformer; one episode of 20 study examples and 40 queries for meta
seq2seq; for MLC, the `mlc-scan-addjump` step: 8 one-query episodes with 10 study commands in each source
and one study example as a second query), target tokens per second. Interleaved rounds, medians. Appends to
benchmarks/results/seq2seq_decoding.jsonl.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch
from record import append

from learntolearn.compositional.meta_seq2seq import EOS
from learntolearn.compositional.scan_runs import ACTION_WORDS, Codec, build_model, codec_for, preset
from learntolearn.data.scan import PRIMITIVES, PrimitiveRemapEpisodes, load_scan

LENGTH = 48


def median_seconds(functions: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def profile(function: Callable[[], object]) -> dict[str, float]:
    """Self CPU milliseconds of the five costliest operators in one call."""
    with torch.profiler.profile() as prof:
        function()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:5]
    return {e.key: round(e.self_cpu_time_total / 1000, 1) for e in events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    train, test = (load_scan("addprim_jump", subset, data_root=args.data_root) for subset in ("train", "test"))
    codec = Codec.of(train + test)
    transformer_config, meta_config = preset("transformer-scan-addjump"), preset("metaseq2seq-scan-addjump")
    transformer = build_model(transformer_config, len(codec.inputs), len(codec.outputs))
    meta = build_model(meta_config, len(codec.inputs), len(codec.outputs))
    for model in (transformer, meta):
        with torch.no_grad():
            model.readout.bias[EOS] = -1e9  # every row decodes LENGTH tokens
        model.eval()
    commands = codec.commands([c for c, _ in test[:256]])
    study = codec.pairs([((w,), (a,)) for w, a in PRIMITIVES.items()])
    outputs = {
        "cached": transformer.greedy(commands, LENGTH),
        "recomputed": transformer.greedy(commands, LENGTH, cache=False),
    }
    if not torch.equal(outputs["cached"], outputs["recomputed"]):
        raise SystemExit("the KV cache changed the decoded tokens")
    decoded_tokens = commands.shape[0] * outputs["cached"].shape[1]
    decoding = median_seconds(
        {
            "transformer, KV cache": lambda: transformer.greedy(commands, LENGTH),
            "transformer, prefix recomputed": lambda: transformer.greedy(commands, LENGTH, cache=False),
            "meta seq2seq (LSTM)": lambda: meta.greedy(*study, commands, LENGTH),
        },
        args.rounds,
    )
    profiles = {
        "transformer, KV cache": profile(lambda: transformer.greedy(commands, LENGTH)),
        "transformer, prefix recomputed": profile(lambda: transformer.greedy(commands, LENGTH, cache=False)),
    }
    rng = random.Random(0)
    batch = codec.pairs(rng.sample(train, 32))
    episode = PrimitiveRemapEpisodes(load_scan("all", data_root=args.data_root), study=20, rename_words=True).sample()
    study_batch, query_batch = codec.pairs(episode.study), codec.pairs(episode.queries + episode.study)

    def step_transformer() -> None:
        transformer.train()
        transformer.loss(*batch).backward()

    def step_meta() -> None:
        meta.train()
        meta.loss(*study_batch, *query_batch).backward()

    mlc_config = preset("mlc-scan-addjump")
    mlc_codec = codec_for(mlc_config, train + test)
    mlc = build_model(mlc_config, len(mlc_codec.inputs), len(mlc_codec.outputs))
    mlc_episodes = PrimitiveRemapEpisodes(train, primitives=ACTION_WORDS, queries=1, study=mlc_config.study, keep=0.05)
    drawn = [mlc_episodes.sample() for _ in range(mlc_config.queries)]
    mlc_batch = mlc_codec.batch([(e.study, e.queries + e.study[:1]) for e in drawn])

    def step_mlc() -> None:
        mlc.train()
        mlc.loss(*mlc_batch).backward()

    training = median_seconds(
        {"transformer": step_transformer, "meta seq2seq (LSTM)": step_meta, "MLC (transformer)": step_mlc}, args.rounds
    )
    target_tokens = {
        "transformer": int((batch[1] != 0).sum()),
        "meta seq2seq (LSTM)": int((query_batch[1] != 0).sum()),
        "MLC (transformer)": int((mlc_batch[1] != 0).sum()),
    }
    append(
        "seq2seq_decoding",
        {
            "setting": f"{commands.shape[0]} commands x {LENGTH} actions",
            "decoding_tokens_per_s": {k: round(decoded_tokens / s) for k, s in decoding.items()},
            "kv_cache_speedup": round(
                decoding["transformer, prefix recomputed"] / decoding["transformer, KV cache"], 2
            ),
            "same_tokens": True,
            # decoder positions run per command: LENGTH with the cache, 1 + 2 + ... + LENGTH without
            "decoder_positions_ratio": round(LENGTH * (LENGTH + 1) / 2 / LENGTH, 1),
            "profile_ms": profiles,
            "training_target_tokens_per_s": {k: round(target_tokens[k] / s) for k, s in training.items()},
            "training_step_s": {k: round(s, 3) for k, s in training.items()},
            "mlc_source_tokens": int((mlc_batch[0] != 0).sum()),
            "rounds": args.rounds,
        },
    )


if __name__ == "__main__":
    main()
