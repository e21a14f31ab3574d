"""Few-shot classification of real photos with a pretrained encoder and no training: Fashion-MNIST.

    pip install 'learntolearn[vision]'
    python scripts/reproduce/photos_fewshot.py --data-root ../shared/data [--per-class 200 --episodes 1000]

What ``ltl adapt --support photos/ --query photos/`` does without a model, measured: the first
``--per-class`` images of each of Fashion-MNIST's 10 test classes go through the path a user's PNG
files take (grey to RGB, Lanczos-resized to the encoder's resolution) into EfficientNet-Lite0 with its
ImageNet weights, frozen; 5-way 1-shot and 5-shot episodes (15 queries per class, fixed seed, the
same episodes for every method, so differences are paired) are labelled by nearest class mean
(cosine), by nearest class mean (Euclidean) and by a logistic regression fitted on the support set,
against nearest class mean on the raw 28x28 pixels. ImageNet contains clothing and shoe classes, so
this measures transfer to a related domain, not to an unseen one. Writes results/photos.json
(per-episode accuracies, provenance) and results/photos.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from accuracy_cells import accuracy_cells
from PIL import Image
from torch import nn

from learntolearn.algorithms import LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet
from learntolearn.data.fashion_mnist import load_fashion_mnist
from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import FeatureDataset
from learntolearn.engine.evaluate import Evaluation, evaluate, paired_difference
from learntolearn.engine.provenance import provenance
from learntolearn.files import write_json, write_text
from learntolearn.nn.efficientnet import ImageEncoder

ROOT = Path(__file__).resolve().parents[2]
WAYS, QUERIES, SHOTS = 5, 15, (1, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    started, origin = time.process_time(), provenance()
    test = load_fashion_mnist("official", "test", data_root=args.data_root)
    rows = torch.cat([torch.arange(int(start), int(start) + args.per_class) for start in test.offsets[:-1]])
    offsets = torch.arange(test.n_classes + 1) * args.per_class
    pixels = test.images[rows]
    encoder = ImageEncoder(args.encoder)
    as_photo = Preprocessing(channels=3, size=encoder.resolution, invert=False, resize="center-crop")
    photos = torch.stack([as_photo.from_image(Image.fromarray(image[0].numpy(), mode="L")) for image in pixels])
    encoded = time.perf_counter()
    features = encoder.encode(photos)  # not from the cache: the record states the encoding time
    encode_seconds = time.perf_counter() - encoded
    name = f"{test.name}/first{args.per_class}"
    inputs = {
        "raw pixels": FeatureDataset(name, pixels.flatten(1).float() / 255, offsets, test.class_names),
        args.encoder: FeatureDataset(name, features, offsets, test.class_names),
    }
    methods = {  # label: (inputs, algorithm)
        "raw pixels, prototypes (Euclidean)": ("raw pixels", PrototypicalNetworks(nn.Identity())),
        f"{args.encoder}, prototypes (cosine)": (args.encoder, PrototypicalNetworks(nn.Identity(), distance="cosine")),
        f"{args.encoder}, prototypes (Euclidean)": (args.encoder, PrototypicalNetworks(nn.Identity())),
        f"{args.encoder}, logistic regression": (args.encoder, LogisticRegressionProbe()),
    }
    results, per_episode = [], {}
    for shots in SHOTS:
        episodes = EpisodeSet.generate(inputs["raw pixels"], WAYS, shots, QUERIES, args.episodes, TEST_EPISODE_SEED)
        scores: dict[str, Evaluation] = {}
        for label, (source, algorithm) in methods.items():
            began = time.process_time()
            scores[label] = evaluate(algorithm, episodes.tasks(inputs[source]), progress=False)
            reference = scores["raw pixels, prototypes (Euclidean)"]
            difference = (
                paired_difference(scores[label], reference)
                if label in scores and scores[label] is not reference
                else None
            )
            results.append(
                {
                    "setting": f"{WAYS}-way {shots}-shot",
                    "method": label,
                    "accuracy": scores[label].mean,
                    "ci95": scores[label].ci95,
                    "vs_raw_pixels": difference,
                    "cpu_ms_per_episode": round(1000 * (time.process_time() - began) / len(episodes), 2),
                }
            )
            per_episode[f"{WAYS}-way {shots}-shot | {label}"] = scores[label].accuracies.tolist()
            print(results[-1], flush=True)
    record = {
        "data": f"Fashion-MNIST test, first {args.per_class} images of each of its 10 classes",
        "encoder": args.encoder,
        "episodes": args.episodes,
        "queries": QUERIES,
        "episode_seed": TEST_EPISODE_SEED,
        "encode_seconds": round(encode_seconds, 1),
        "images_encoded": len(photos),
        "rows": results,
        "per_episode": per_episode,
        "cpu_seconds": round(time.process_time() - started, 1),
        **origin,
    }
    write_json(args.out / "photos.json", record)
    write_text(args.out / "photos.md", markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    lines = [
        f"{record['data']}, through the path a user's files take; {record['episodes']} fixed episodes per setting "
        f"(seed {record['episode_seed']}, {record['queries']} queries per class), mean accuracy ± 95% CI and the "
        f"paired difference against raw-pixel prototypes on the same episodes:",
        "",
        "| setting | method | accuracy | vs raw pixels | CPU ms / episode |",
        "|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        accuracy, versus = accuracy_cells(row)
        lines.append(f"| {row['setting']} | {row['method']} | {accuracy} | {versus} | {row['cpu_ms_per_episode']} |")
    lines += [
        "",
        f"Commit `{record['commit'][:10]}`, torch {record['torch']}, {record['threads']} thread(s), "
        f"{record['cpu_seconds']} CPU seconds in all, of which encoding {record['images_encoded']} images took "
        f"{record['encode_seconds']} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
