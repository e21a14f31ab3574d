"""Write the generated sections of the docs: benchmarks from benchmarks/results/*.jsonl into
docs/benchmarks.md, each results table from results/TABLE.md (written by `ltl reproduce TABLE`) into
the docs page holding its markers, and the README's short headline table from results/omniglot.json.

    python scripts/update_docs.py           # print the benchmark section
    python scripts/update_docs.py --write   # replace every generated section between its markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TABLES = ROOT / "results"


def latest(name: str, per_cpu: bool = False) -> dict[str, dict]:
    """The last record of each setting (of each setting and CPU model with ``per_cpu``, records that do not
    name their model counting as one more model), keyed by setting."""
    path = RESULTS / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if per_cpu:
        last = {(r["setting"], r.get("cpu_model")): r for r in records}
        return {
            f"{setting}, on {cpu or 'an earlier CPU (model not recorded)'}": r for (setting, cpu), r in last.items()
        }
    return {r["setting"]: r for r in records}


def process_setup(record: dict) -> str:
    """How the record's process allocated memory, for benchmarks whose implementations share one process,
    and the vector instruction set where the record names it (the table's heading names the CPU model)."""
    machine = f", {record['cpu_capability']}" if "cpu_capability" in record else ""
    if record.get("malloc") == "reuse-freed":
        return ", freed buffers reused for every implementation" + machine
    return (", C library's default allocator" if "malloc" in record else "") + machine


def maml_peer_ratios(rates: dict[str, float]) -> str:
    """The sentence under a maml_peers table, its ratios taken from the rates over the fastest peer in the table
    (plain PyTorch, higher or torchopt; records before 2026-12-04 stored ratios over higher and torchopt only)."""
    peers = {n: v for n, v in rates.items() if not n.startswith("learntolearn")}
    if not peers:
        return "No peer ran."
    fastest = max(peers, key=peers.get)
    ours = [v for n, v in rates.items() if n.startswith("learntolearn (")]
    ours_float32 = [v for n, v in rates.items() if n.startswith("learntolearn (") and "bfloat16" not in n]
    anil = [v for n, v in rates.items() if n.startswith("learntolearn ANIL")]
    sentence = f"learntolearn's best path over the fastest peer ({fastest}): {max(ours) / peers[fastest]:.2f}x"
    if ours_float32 and max(ours_float32) != max(ours):
        sentence += f" ({max(ours_float32) / peers[fastest]:.2f}x with float32 query passes)"
    sentence += "."
    if anil:
        sentence += f" ANIL over learntolearn's MAML: {max(anil) / max(ours):.2f}x."
    return sentence


def section() -> str:
    out = [
        "Printed by `python scripts/update_docs.py` from the JSON lines the benchmark scripts append",
        "to `benchmarks/results/`; each row records its commit and thread count (2-core x86_64 CPUs, torch",
        "2.13.0, other jobs sometimes running). The CPU model has changed between sittings, and records name it",
        "from 2026-12-04 on. Absolute rates are noisy and differ between models; ratios come from one run.",
        "",
    ]
    rows = latest("episode_sampling")
    out += [
        "`python benchmarks/episode_sampling.py --data-root ../shared/data`: episodes per second of the",
        "sampler against a per-image Python loop (index one image at a time and stack, as a map-style",
        "`Dataset` does), on Omniglot Vinyals train (4,112 classes, 28x28):",
        "",
        "| episodes | learntolearn episodes/s | per-image loop episodes/s | speed-up | commit, threads |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {k} | {r['episodes_per_s']:,.0f} | {r['per_image_loop_episodes_per_s']:,.0f} | {r['speedup']}x | "
        f"`{r['commit'][:10]}`, {r['threads']} |"
        for k, r in rows.items()
    ]
    rows = latest("channels_last")
    out += [
        "",
        "`python benchmarks/channels_last.py`: conv4 forward+backward on 400 images of 28x28, PyTorch's",
        "default layout against the channels-last layout the conv backbones use:",
        "",
        "| setting | contiguous s | channels-last s | speed-up | same outputs | commit, threads |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {k} | {r['contiguous_s']} | {r['channels_last_s']} | {r['speedup']}x | {r['same_outputs']} | "
        f"`{r['commit'][:10]}`, {r['threads']} |"
        for k, r in rows.items()
    ]
    rows = latest("maml_paths")
    out += [
        "",
        "`python benchmarks/maml_paths.py`: MAML's task loop against its vmapped path (glyph episodes):",
        "",
        "| second-order MAML, one inner step | task loop it/s | vmapped it/s | vmapped / loop | commit, threads |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {k} | {r['loop_iterations_per_s']} | {r['vmapped_iterations_per_s']} | {r['vmapped_over_loop']}x | "
        f"`{r['commit'][:10]}`, {r['threads']} |"
        for k, r in rows.items()
    ]
    rows = latest("compiled_maml", per_cpu=True)
    if rows:
        variants = list(dict.fromkeys(v for r in rows.values() for v in r["meta_iterations_per_s"]))
        out += [
            "",
            "`python benchmarks/compiled_maml.py`: compiled MAML (`compiled=True`) with 1 to 8 tasks per graph and",
            "Inductor's Python or C++ wrapper code, meta-iterations/s (first meta-iteration, compilation",
            "included, in seconds):",
            "",
            "| setting | " + " | ".join(variants) + " | commit, threads |",
            "|---" * (len(variants) + 2) + "|",
        ]
        out += [
            f"| {k} | "
            + " | ".join(
                f"{r['meta_iterations_per_s'][v]} ({r['first_step_seconds'][v]} s)"
                if v in r["meta_iterations_per_s"]
                else "—"
                for v in variants
            )
            + f" | `{r['commit'][:10]}`, {r['threads']} |"
            for k, r in rows.items()
        ]
    for setting, r in latest("maml_peers", per_cpu=True).items():
        out += [
            "",
            "`python benchmarks/maml_peers.py` (peers installed with `pip install higher torchopt` in a separate",
            f"environment): MAML, {setting}; median meta-iterations/s of interleaved rounds",
            f"(commit `{r['commit'][:10]}`, {r['threads']} thread{process_setup(r)}):",
            "",
            "| implementation | meta-iterations/s |",
            "|---|---|",
        ]
        out += [f"| {name} | {rate} |" for name, rate in r["meta_iterations_per_s"].items()]
        out += [f"| {name} | {why} |" for name, why in r["missing"].items()]
        out += ["", maml_peer_ratios(r["meta_iterations_per_s"])]
    rows = latest("maml_precision")
    if rows:
        variants = list(next(iter(rows.values()))["relative_distance_to_float64"])
        out += [
            "",
            "`python benchmarks/maml_precision.py`: distance of MAML's meta-gradient (one meta-batch of 32",
            "tasks at the initial weights) from the float64 one, |g - g64| / |g64|:",
            "",
            "| setting | " + " | ".join(variants) + " | commit |",
            "|---" * (len(variants) + 2) + "|",
        ]
        out += [
            f"| {k} | "
            + " | ".join(str(r["relative_distance_to_float64"][v]) for v in variants)
            + f" | `{r['commit'][:10]}` |"
            for k, r in rows.items()
        ]
    for setting, r in latest("maml_end_to_end", per_cpu=True).items():
        rates = r["meta_iterations_per_s"]
        out += [
            "",
            "`python benchmarks/maml_end_to_end.py --data-root ../shared/data` (learn2learn 0.2.0 built from its",
            "sdist in a separate environment with torch 2.14.1 and torchvision 0.29.1; steps in the script): MAML",
            (
                f"meta-iterations/s, {setting}, from the Omniglot zips; median of {len(r['rounds'][next(iter(rates))])} "
                f"interleaved rounds (commit `{r['commit'][:10]}`, torch {r['torch']}):"
            ),
            "",
            "| pipeline | meta-iterations/s | over learn2learn |",
            "|---|---|---|",
        ]
        base = rates.get("learn2learn")
        out += [
            f"| {name} | {rate:.3f} | {rate / base:.2f}x |" if base else f"| {name} | {rate:.3f} | |"
            for name, rate in rates.items()
        ]
        out += [f"| {name} | {why} | |" for name, why in r["missing"].items()]
    for setting, r in latest("maml_memory").items():
        out += [
            "",
            f"`python benchmarks/maml_memory.py`: {setting}; growth of peak resident memory over one",
            f"meta-iteration, each configuration in its own process (commit `{r['commit'][:10]}`; warm: after a",
            "warm-up iteration on one 1-query task, so one-time costs are left out):",
            "",
        ]
        warm = r.get("warm_peak_growth_mb")
        if warm:
            out += ["| configuration | peak growth, MB (cold) | peak growth, MB (warm) |", "|---|---|---|"]
            out += [f"| {name} | {mb:,.0f} | {warm[name]:,.0f} |" for name, mb in r["peak_growth_mb"].items()]
            out += [f"| {name} | {why} | |" for name, why in r["missing"].items()]
        else:
            out += ["| configuration | peak growth, MB |", "|---|---|"]
            out += [f"| {name} | {mb:,.0f} |" for name, mb in r["peak_growth_mb"].items()]
            out += [f"| {name} | {why} |" for name, why in r["missing"].items()]
    for setting, r in latest("float32_limit", per_cpu=True).items():
        out += [
            "",
            "`python benchmarks/float32_limit.py`: one training step of learntolearn's default path and of its peer,",
            "the share of each step's time in convolutions (forward, backward, and backward of the backward) and",
            f"the rate they reach, against a 1024 x 1024 float32 matrix product on the same core, {r['matmul_gflops']}",
            f"GFLOP/s ({setting.removeprefix('training steps, ')}, commit `{r['commit'][:10]}`, 1 thread"
            f"{', ' + r['cpu_capability'] if 'cpu_capability' in r else ''}). "
            "The last column is the peer's step time over the time of",
            "the step's convolutions at the better of the two rates: the largest speed-up over the peer that any",
            "float32 implementation with these convolution kernels could show, every other operator free:",
            "",
            "| step | implementation | seconds | convolutions' share | their GFLOP/s | GFLOP per step "
            "| largest other operators (share) | bound over the peer |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in r["steps"].items():
            for implementation in ("learntolearn", row["peer"]):
                x = row[implementation]
                others = ", ".join(
                    f"{op.removeprefix('aten::')} {100 * share:.0f}%" for op, share in x["largest_other_ops"].items()
                )
                bound = f"{row['bound_over_peer']}x" if implementation == row["peer"] else ""
                out.append(
                    f"| {name} | {implementation} | {x['step_s']} | {100 * x['convolution_share']:.0f}% | "
                    f"{x['convolution_gflops']} | {x['convolution_gflop_per_step']} | {others} | {bound} |"
                )
    for setting, r in latest("protonet_peers", per_cpu=True).items():
        out += [
            "",
            "`python benchmarks/protonet_peers.py --data-root ../shared/data` (easyfsl installed in a separate",
            f"environment): Prototypical Networks training steps, {setting}; median episodes/s of interleaved",
            f"rounds (commit `{r['commit'][:10]}`, {r['threads']} thread{process_setup(r)}):",
            "",
            "| implementation | episodes/s | over easyfsl |",
            "|---|---|---|",
        ]
        base = r["episodes_per_s"].get("easyfsl")
        out += [
            f"| {name} | {rate} | {rate / base:.2f}x |" if base else f"| {name} | {rate} | |"
            for name, rate in r["episodes_per_s"].items()
        ]
        out += [f"| {name} | {why} | |" for name, why in r["missing"].items()]
    for setting, r in latest("metric_evaluation").items():
        out += [
            "",
            (
                f"`python benchmarks/metric_evaluation.py`: {setting} (commit `{r['commit'][:10]}`, "
                f"{r['threads']} thread):"
            ),
            "",
            "| algorithm | seconds for 1,000 episodes |",
            "|---|---|",
        ]
        out += [f"| {name} | {seconds} |" for name, seconds in r["seconds"].items()]
    for setting, r in latest("distributed_scaling").items():
        out += [
            "",
            "`python benchmarks/distributed_scaling.py --data-root ../shared/data`: meta-training tasks/s of",
            f"`ltl train` on Omniglot, {setting}; median of {r['rounds']} interleaved rounds of {r['steps']} steps",
            f"(commit `{r['commit'][:10]}`):",
            "",
            "| processes x threads | tasks/s | over 1 x 1 |",
            "|---|---|---|",
        ]
        out += [f"| {name} | {rate} | {r['speedup_vs_1x1'][name]}x |" for name, rate in r["tasks_per_second"].items()]
    for setting, r in latest("image_encoder").items():
        out += [
            "",
            f"`python benchmarks/image_encoder.py`: {setting}, images per second, median of {r['rounds']}",
            "interleaved rounds; the reference is efficientnet-lite-pytorch on the same weights",
            f"(commit `{r['commit'][:10]}`, {r['threads']} thread(s)):",
            "",
            "| implementation | images/s |",
            "|---|---|",
        ]
        out += [f"| {name} | {rate} |" for name, rate in r["images_per_s"].items()]
        out += [
            "",
            f"Ours over the reference in float32: {r['speedup_vs_reference']}x; largest feature difference "
            f"{r['max_abs_difference_float32']:.1e} (float32), {r['max_abs_difference_bfloat16_vs_float32']:.2f} "
            f"(bfloat16 against float32).",
        ]
    out += ["", "### Sequence models: training and decoding", ""]
    records = latest("seq2seq_decoding")
    if not records:
        out.append("`python benchmarks/seq2seq_decoding.py` has not been recorded yet.")
    for setting, r in records.items():
        out += [
            f"`python benchmarks/seq2seq_decoding.py --data-root ../shared/data`: greedy decoding of {setting} (SCAN",
            "add-jump test commands, end token suppressed) with the presets' networks, random weights; the KV cache",
            f"gives the same tokens as recomputing the prefix and is {r['kv_cache_speedup']}x faster (commit "
            f"`{r['commit'][:10]}`, {r['threads']} thread, nothing else running):",
            "",
            "| model | decoded tokens/s |",
            "|---|---|",
        ]
        out += [f"| {name} | {rate:,} |" for name, rate in r["decoding_tokens_per_s"].items()]
        cached, recomputed = (r["profile_ms"][k] for k in ("transformer, KV cache", "transformer, prefix recomputed"))
        out += [
            "",
            f"Why: without the cache each step runs the decoder over the whole prefix, {r['decoder_positions_ratio']}x",
            "the decoder positions of the cached run over 48 steps; the encoder, the attention to the source and",
            "the per-step Python are the same in both, so the gain is less. Costliest operators in one call",
            "(self CPU ms), cached: "
            + ", ".join(f"{k} {v}" for k, v in cached.items())
            + "; recomputed: "
            + ", ".join(f"{k} {v}" for k, v in recomputed.items())
            + ".",
        ]
        if "aten::cat" not in cached:
            out += [
                "",
                "The cache's keys and values are written into buffers allocated once (at commit `03b008acca` they",
                "were concatenated every step: aten::cat took 189.2 ms of a cached call, which ran at 10,860",
                "tokens/s, 8.23x the recomputed prefix); attention over the buffers' strided slices costs more than",
                "over those fresh copies did (424.6 ms then), so the net gain is small.",
            ]
        steps = r.get("training_step_s", {})
        out += ["", "| model (one training step) | seconds | target tokens/s |", "|---|---|---|"]
        out += [
            f"| {name} | {steps.get(name, '—')} | {rate:,} |"
            for name, rate in r["training_target_tokens_per_s"].items()
        ]
        if "mlc_source_tokens" in r:
            out += [
                "",
                "Training steps: 32 training commands (transformer); one episode of 20 study examples and 40 queries",
                "(meta seq2seq); the `mlc-scan-addjump` step, 8 one-query episodes with 10 study commands in each",
                f"source ({r['mlc_source_tokens']:,} source tokens), so MLC reads long sources for few target tokens.",
            ]
    out += ["", "### Web page load", ""]
    records = latest("serve_load")
    if not records:
        out.append("`python benchmarks/serve_load.py --model RUN` has not been recorded yet.")
    for setting, r in records.items():
        out += [
            f"`python benchmarks/serve_load.py --model {r['model']}`: `ltl serve` in its own process, {setting} of",
            "simulated users on localhost (each adds example photos, then predicts drawings and labels a photo",
            f"every fifth time); started in {r['startup_s']} s, {r['requests_per_s']} requests/s, "
            f"{r['errors']} errors (commit `{r['commit'][:10]}`, {r['cores']} cores, server with {r['server_threads']} "
            "torch thread(s), nothing else running):",
            "",
            "| request | requests | p50 ms | p95 ms | max ms |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {kind} | {k['requests']} | {k['p50_ms']} | {k['p95_ms']} | {k['max_ms']} |"
            for kind, k in r["kinds"].items()
        ]
    for r in latest("rl_simulators").values():
        shares = r["navigation meta-iteration (s)"]
        out += [
            "",
            "`python benchmarks/rl_simulators.py`: meta-RL episode sampling, environment steps per second (every",
            "copy's steps, the presets' MLP policy included) of the batched tensor simulator against gymnasium's",
            f"vector environments on the same tasks and policy (commit `{r['commit'][:10]}`, {r['threads']} thread):",
            "",
            "| setting | " + " | ".join(r["navigation 20 tasks x 2 episodes (steps/s)"]) + " |",
            "|---|" + "---|" * len(r["navigation 20 tasks x 2 episodes (steps/s)"]),
        ]
        for key in ("navigation 20 tasks x 2 episodes (steps/s)", "navigation 20 tasks x 20 episodes (steps/s)"):
            cells = [
                f"{r[key].get(name, '—'):,}" if name in r[key] else "—"
                for name in r["navigation 20 tasks x 2 episodes (steps/s)"]
            ]
            out.append(f"| {key.removesuffix(' (steps/s)')} | " + " | ".join(cells) + " |")
        cheetah = r["cheetah 8 copies x 200 steps (steps/s)"]
        out += [
            "",
            f"HalfCheetah, 8 copies of 200 steps: {', '.join(f'{k} {v:,} steps/s' for k, v in cheetah.items())}. "
            f"One MAML-RL navigation meta-iteration (20 tasks x 20 episodes, second order): "
            f"{shares['simulating (both samples)']} s simulating, {shares['advantages and adaptation']} s for "
            f"advantages and the inner step, {shares['TRPO']} s in TRPO; simulating is "
            f"{100 * shares['share simulating']:.1f}% of it.",
        ]
        if "cheetah meta-iteration (s)" in r:
            parts = r["cheetah meta-iteration (s)"]
            out[-1] += (
                " One HalfCheetah forward/backward meta-iteration (40 tasks x 20 episodes of 200 steps, second order, "
                f"SyncVectorEnv): {parts['simulating (both samples)']} s simulating, "
                f"{parts['advantages and adaptation']} s for advantages and the inner step, {parts['TRPO']} s in TRPO; "
                f"simulating is {100 * parts['share simulating']:.1f}% of it."
            )
    for r in latest("time_to_accuracy").values():
        reached = "; ".join(
            f"{accuracy}% "
            + (
                f"after {t['reached_after_cpu_minutes']} CPU minutes"
                if t["reached_after_cpu_minutes"] is not None
                else f"not reached in the {r['curve'][-1]['cpu_minutes']} CPU minutes run ({r['curve'][-1]['step']:,} steps)"
            )
            + f" (target: within {t['cpu_minutes_allowed']})"
            for accuracy, t in r["targets"].items()
        )
        out += [
            "",
            f"`python {r['command']}`: accuracy on the {r['test_episodes']:,} fixed test episodes against",
            f"training CPU time on one thread (commit `{r['commit'][:10]}`"
            + (", with uncommitted changes" if r["commit"].endswith("-dirty") else "")
            + (
                "; the C library's default malloc, not the reuse of freed memory `ltl` sets, so slower than `ltl train`"
                if r.get("malloc") == "default"
                else ""
            )
            + f"): {reached}."
            + (f" Note: {r['commit_note']}." if "commit_note" in r else ""),
            "",
            "| step | CPU minutes | test accuracy % (95% CI) |",
            "|---|---|---|",
        ]
        out += [f"| {p['step']:,} | {p['cpu_minutes']} | {p['test_accuracy']} ± {p['ci95']} |" for p in r["curve"]]
    for r in latest("continual_online").values():
        online, meta = r["online steps/s"], r["meta-training steps/s"]
        out += [
            "",
            "`python benchmarks/continual_online.py`: the online phase of OML/ANML's protocol, single-image steps per",
            f"second on the OML preset's network (output layers learning): {', '.join(f'{k} {v}' for k, v in online.items())}; "
            f"meta-training steps per second (trajectory of 20, remember set of 64, second order): "
            f"{', '.join(f'{k} {v}' for k, v in meta.items())} (commit `{r['commit'][:10]}`, {r['threads']} thread).",
        ]
    rows = latest("federated_simulation")
    if rows:
        out += [
            "",
            "`python benchmarks/federated_simulation.py --data-root ../shared/data`: 8 rounds of 10 Omniglot clients in",
            "Flower's simulation engine (Ray) against the same clients' updates and average in a plain loop; shares",
            "are of the client processes' wall time: their computation, their first reading of a client's data",
            "(a process caches each client it has served), and the rest (Ray's and Flower's messaging, idle):",
            "",
            "| preset, client processes | simulation s/round | client updates/s | plain loop s/round | computation | "
            "data reading | MB/round | commit |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {k} | {r['simulation_s_per_round']} | {r['client_updates_per_s']} | {r['plain_loop_s_per_round']} | "
            f"{100 * r['client_compute_share']:.0f}% | "
            + (f"{100 * r['client_data_loading_share']:.0f}%" if "client_data_loading_share" in r else "not split")
            + f" | {r['bytes_per_round'] / 1e6:.2f} | `{r['commit'][:10]}` |"
            for k, r in rows.items()
        ]
        out += [
            "",
            "In these short runs most of a client process's time is its first reading of an alphabet (decoding the",
            "official archive's images); the plain loop reads its clients before timing. A long run reads each client",
            "once per process, so its rounds approach the computation plus the messaging share.",
        ]
    return "\n".join(out)


def replace_section(content: str, name: str, text: str) -> str:
    """``content`` with the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in content or end not in content:
        raise SystemExit(f"no {start} ... {end} markers")
    head, rest = content.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{text.rstrip()}\n{end}{tail}"


#: the README's headline: one row per (preset, setting) of the Omniglot table that has a paper figure
HEADLINE = [
    ("protonet-omniglot-5w1s", "5-way 1-shot"),
    ("protonet-omniglot-5w1s", "20-way 1-shot"),
    ("matching-omniglot-1shot", "5-way 1-shot"),
    ("maml-omniglot-5w1s", "5-way 1-shot"),
    ("fomaml-omniglot-5w1s", "5-way 1-shot"),
    ("reptile-omniglot-5w1s", "5-way 1-shot"),
    ("relation-omniglot-5w1s", "5-way 1-shot"),
]


def headline() -> str:
    """A short table of our Omniglot figures beside the papers', from results/omniglot.json."""
    written = json.loads((TABLES / "omniglot.json").read_text())
    rows = {(r["preset"], r["setting"].split(",")[0]): r for r in written["rows"]}
    out = ["| preset | setting | ours (95% CI) | paper | status |", "|---|---|---|---|---|"]
    for preset, setting in HEADLINE:
        r = rows[(preset, setting)]
        paper = f"{r['paper']}" + (f" ± {r['paper_ci']}" if r.get("paper_ci") else "")
        status = "complete" if r["status"] == "complete" else f"{r['steps']:,} of {r['of_steps']:,} steps"
        out.append(f"| `{preset}` | {setting} | {r['ours']:.2f} ± {r['ci95']:.2f} | {paper} | {status} |")
    return "\n".join(out)


def photos_headline() -> str:
    """The README's photo table: Fashion-MNIST with the frozen encoder, from results/photos.json."""
    written = json.loads((TABLES / "photos.json").read_text())
    out = ["| setting | method | accuracy (95% CI) |", "|---|---|---|"]
    out += [
        f"| {r['setting']} | {r['method']} | {100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f} |"
        for r in written["rows"]
    ]
    return "\n".join(out)


def write_sections(path: Path, sections: dict[str, str]) -> None:
    """Replace the sections of ``path`` whose markers it holds."""
    content = path.read_text()
    for name, text in sections.items():
        if f"<!-- {name}:start -->" in content:
            content = replace_section(content, name, text)
    path.write_text(content)


def main() -> None:
    text = section()
    if "--write" not in sys.argv:
        print(text)
        return
    tables = {f"results:{table.stem}": table.read_text() for table in sorted(TABLES.glob("*.md"))}
    for page in sorted((ROOT / "docs").glob("*.md")):
        write_sections(page, {"benchmarks": text, **tables})
    write_sections(ROOT / "README.md", {"headline": headline(), "photos": photos_headline()})


if __name__ == "__main__":
    main()
