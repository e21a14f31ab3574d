"""A cross-domain few-shot benchmark from what is offline, Meta-Dataset style: one command, one results table.

    pip install 'learntolearn[vision]' scikit-learn
    python scripts/reproduce/cross_domain.py --data-root ../shared/data [--episodes 30] [--runs runs]

Sources (every image 28x28 grey, as the data loaders give them): Omniglot characters of the Vinyals test
split (a fixed random 100 of them, 20 drawings each), Fashion-MNIST test (the first 200 images of each
class) and scikit-learn's handwritten digits (1,797 8x8 images, upscaled). Per source, fixed episodes
of variable ways and imbalanced shots (learntolearn.data.variable_episodes; Meta-Dataset's limits but
supports of at most --max-support images instead of 500, for this CPU); every method scores the same
episodes, so differences are paired. Methods: raw-pixel prototypes; a conv4 ProtoNet meta-trained on
Omniglot (preset protonet-omniglot-short); the ImageNet-pretrained EfficientNet-Lite0 frozen, with
cosine prototypes and with a logistic regression; fine-tuned on each support set (P>M>F's last stage,
"P>F"); meta-trained on Omniglot with ProtoNets episodes (preset protonet-efficientnet-omniglot, P>M>F's
middle stage, "P>M"); and both ("P>M>F"). Missing runs are trained first. Each (source, method) is stored
as it finishes under --out/cross-domain.parts/, so an interrupted run resumes; --sources lets several
processes share the work. Writes results/cross-domain.{json,md} and the table in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from accuracy_cells import accuracy_cells
from torch import nn

from learntolearn.algorithms import Algorithm, LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.algorithms.finetune import SupportFineTuning
from learntolearn.data.fashion_mnist import load_fashion_mnist
from learntolearn.data.indexed import EpisodicData, ImageClassDataset
from learntolearn.data.omniglot import load_omniglot
from learntolearn.data.variable_episodes import EpisodeShape, VariableEpisodeSet
from learntolearn.engine.evaluate import Evaluation, evaluate, paired_difference
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.model_file import load_run
from learntolearn.engine.provenance import provenance
from learntolearn.engine.trainer import Trainer
from learntolearn.experiments.presets import get_preset
from learntolearn.files import write_json, write_text
from learntolearn.nn.efficientnet import PretrainedBackbone

ROOT = Path(__file__).resolve().parents[2]
EPISODE_SEED = 2
CONV4_PRESET, META_PRESET = "protonet-omniglot-short", "protonet-efficientnet-omniglot"
REFERENCE = "raw pixels, prototypes"


def subset_classes(data: ImageClassDataset, classes: list[int], per_class: int | None, name: str) -> ImageClassDataset:
    groups = [data.images[int(data.offsets[c]) : int(data.offsets[c + 1])][:per_class] for c in classes]
    return ImageClassDataset.from_class_tensors(name, groups, [data.class_names[c] for c in classes])


def load_sources(data_root: str | None) -> dict[str, ImageClassDataset]:
    from sklearn.datasets import load_digits

    omniglot = load_omniglot("vinyals", "test", data_root=data_root, rotations=False)
    chosen = torch.randperm(omniglot.n_classes, generator=torch.Generator().manual_seed(0))[:100].sort().values
    fashion = load_fashion_mnist("official", "test", data_root=data_root)
    digits = load_digits()
    pixels = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) * (255 / 16)
    upscaled = F.interpolate(pixels, size=(28, 28), mode="bilinear", align_corners=False).round().clamp(0, 255)
    targets = torch.tensor(digits.target)
    groups = [upscaled[targets == d].to(torch.uint8) for d in range(10)]
    return {
        "Omniglot": subset_classes(omniglot, chosen.tolist(), None, "omniglot/vinyals-test/100"),
        "Fashion-MNIST": subset_classes(fashion, list(range(10)), 200, "fashion_mnist/test/first200"),
        "digits": ImageClassDataset.from_class_tensors("sklearn-digits/28", groups, [str(d) for d in range(10)]),
    }


def trained_run(preset: str, runs: Path, data_root: str | None) -> Path:
    """The run folder of ``preset`` under ``runs``: trained now if absent, resumed if it was interrupted."""
    run = runs / preset
    if not (run / "results.json").exists():
        resume = (run / "last.pt").exists()
        Trainer(get_preset(preset).config, run, data_root=data_root, resume=resume).run()
    return run


def methods(runs: Path, data_root: str | None) -> dict[str, Callable[[], Algorithm]]:
    """Label -> a factory of the method (built only when a row needs it)."""

    pretrained = cache(lambda: PretrainedBackbone().eval())

    @cache
    def meta_trained() -> nn.Module:
        model = load_run(trained_run(META_PRESET, runs, data_root), data_root)
        backbone = model.algorithm.backbone.eval()
        backbone.share_cache(pretrained())  # the same frozen part: encode each image once
        return backbone

    return {
        REFERENCE: lambda: PrototypicalNetworks(nn.Flatten()),
        "conv4 ProtoNet meta-trained on Omniglot": lambda: (
            load_run(trained_run(CONV4_PRESET, runs, data_root), data_root).algorithm
        ),
        "EfficientNet-Lite0 (ImageNet), frozen, prototypes": lambda: PrototypicalNetworks(
            pretrained(), distance="cosine"
        ),
        "EfficientNet-Lite0 (ImageNet), frozen, logistic regression": lambda: LogisticRegressionProbe(pretrained()),
        "P>F: + fine-tuned on each support set": lambda: SupportFineTuning(pretrained()),
        "P>M: + meta-trained on Omniglot": lambda: PrototypicalNetworks(meta_trained(), distance="cosine"),
        "P>M>F: + meta-trained, + fine-tuned": lambda: SupportFineTuning(meta_trained()),
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def score(algorithm: Algorithm, episodes: VariableEpisodeSet, data: EpisodicData, label: str) -> dict:
    began = time.process_time()
    result = evaluate(algorithm, episodes.tasks(data), total=len(episodes), description=label[:40])
    origin = provenance()
    return {
        "accuracies": [round(float(a), 4) for a in result.accuracies],
        "cpu_seconds": round(time.process_time() - began, 1),
        "commit": origin["commit"],
        "threads": origin["threads"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=30, help="Fixed episodes per source.")
    parser.add_argument("--max-support", type=int, default=100, help="Largest support set (Meta-Dataset: 500).")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs", help="Where the meta-trained runs are (or go).")
    parser.add_argument("--sources", default=None, help="Comma-separated sources to score (default: all).")
    parser.add_argument("--methods", default=None, help="Comma-separated method numbers, 1-7 (default: all).")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    reuse_freed_memory()  # as ltl does: the encoder's batches would page-fault afresh on every call otherwise
    started = time.process_time()
    sources = load_sources(args.data_root)
    shape = EpisodeShape(max_support=args.max_support)
    factories = methods(args.runs, args.data_root)
    wanted_sources = args.sources.split(",") if args.sources else list(sources)
    wanted_methods = [list(factories)[int(i) - 1] for i in args.methods.split(",")] if args.methods else list(factories)
    parts = args.out / "cross-domain.parts"
    parts.mkdir(parents=True, exist_ok=True)
    episodes = {name: VariableEpisodeSet(data, args.episodes, EPISODE_SEED, shape) for name, data in sources.items()}
    for label in wanted_methods:
        algorithm = None
        for source in wanted_sources:
            path = parts / f"{slug(source)}.{slug(label)}.{args.episodes}.json"
            if path.exists():
                continue
            algorithm = algorithm or factories[label]()
            write_json(path, score(algorithm, episodes[source], sources[source], f"{source} | {label}"))
            print(f"{source} | {label}: {json.loads(path.read_text())}", flush=True)
    record = collect(args, sources, episodes, factories, parts, started)
    if record is not None:
        write_json(args.out / "cross-domain.json", record)
        write_text(args.out / "cross-domain.md", markdown(record))
        sys.path.insert(0, str(ROOT / "scripts"))
        from update_docs import write_sections

        write_sections(ROOT / "docs" / "results.md", {"results:cross-domain": markdown(record)})
        print(markdown(record))


def collect(args, sources, episodes, factories, parts: Path, started: float) -> dict | None:
    """The whole table once every (source, method) part exists, else None."""
    rows, per_episode, scored_at = [], {}, set()
    for source in sources:
        reference = None
        for label in factories:
            path = parts / f"{slug(source)}.{slug(label)}.{args.episodes}.json"
            if not path.exists():
                print(f"not yet scored: {source} | {label}; run again to finish the table")
                return None
            part = json.loads(path.read_text())
            result = Evaluation(torch.tensor(part["accuracies"], dtype=torch.float64))
            reference = reference or result
            rows.append(
                {
                    "source": source,
                    "method": label,
                    "accuracy": result.mean,
                    "ci95": result.ci95,
                    "vs_raw_pixels": None if label == REFERENCE else paired_difference(result, reference),
                    "cpu_seconds_per_episode": round(part["cpu_seconds"] / len(result.accuracies), 2),
                }
            )
            per_episode[f"{source} | {label}"] = part["accuracies"]
            scored_at.add(f"{part['commit'][:10]} ({part['threads']} thread(s))")
    plans = {
        source: {
            "ways": [len(p.classes) for p in episode_set.plans],
            "support": [sum(p.shots) for p in episode_set.plans],
            "queries": [sum(len(q) for q in p.query) for p in episode_set.plans],
        }
        for source, episode_set in episodes.items()
    }
    return {
        "sources": {
            name: f"{data.name}: {data.n_classes} classes, {len(data.images)} images" for name, data in sources.items()
        },
        "episodes": args.episodes,
        "episode_seed": EPISODE_SEED,
        "max_support": args.max_support,
        "episode_shapes": plans,
        "rows": rows,
        "per_episode": per_episode,
        "scored_at": sorted(scored_at),
        "cpu_seconds_this_invocation": round(time.process_time() - started, 1),
        **provenance(),
    }


def markdown(record: dict) -> str:
    shapes = record["episode_shapes"]
    lines = [
        f"{record['episodes']} fixed episodes per source (seed {record['episode_seed']}), Meta-Dataset's variable "
        f"ways and imbalanced shots with supports of at most {record['max_support']} images; mean accuracy ± 95% "
        "CI and the paired difference against raw-pixel prototypes on the same episodes.",
        "",
        *[
            f"- {name}: {record['sources'][name]}; ways {min(s['ways'])}-{max(s['ways'])}, support sizes "
            f"{min(s['support'])}-{max(s['support'])}, queries {min(s['queries'])}-{max(s['queries'])} per episode"
            for name, s in shapes.items()
        ],
        "",
        "| source | method | accuracy | vs raw pixels | CPU s / episode |",
        "|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        accuracy, versus = accuracy_cells(row)
        lines.append(
            f"| {row['source']} | {row['method']} | {accuracy} | {versus} | {row['cpu_seconds_per_episode']} |"
        )
    lines += [
        "",
        f"Scored at commit {', '.join(record['scored_at'])}, torch {record['torch']}; CPU seconds per episode include encoding the images the first time they are seen (the frozen part's cache is shared by the "
        "rows that use the frozen encoder, in the order listed).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
