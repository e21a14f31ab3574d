"""How far bfloat16 moves MAML's meta-gradient: float32, bfloat16 query passes, bfloat16 everywhere.

    python benchmarks/maml_precision.py [--setting NAME ...]

For each setting of ``maml_peers.py`` (second order), one meta-batch of 32 tasks at the initial
weights: the meta-gradient in float64 is the reference, and each variant is reported as its relative
distance ``|g - g64| / |g64|`` and cosine to it. For scale, the record also holds the distance from
the reference to the float64 meta-gradient of a second, independent meta-batch (sampling noise).
Appends JSON lines to benchmarks/results/maml_precision.jsonl.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import torch
from maml_peers import INNER_LR, SETTINGS, make_model
from record import append

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.types import Task


def meta_gradient(maml: MAML, batch: list[Task], autocast_everything: bool = False) -> torch.Tensor:
    maml.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_everything):
        loss = maml.meta_loss(batch).loss
    loss.backward()
    return torch.cat([p.grad.flatten().double() for p in maml.parameters()])


def in_float64(batch: list[Task]) -> list[Task]:
    return [dataclasses.replace(t, support_x=t.support_x.double(), query_x=t.query_x.double()) for t in batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setting",
        choices=[s for s in SETTINGS if "first order" not in s],
        action="append",
        help="repeatable; default: the second-order settings",
    )
    args = parser.parse_args()
    glyphs = load_synthetic(subset="train", image_size=28)
    for name in args.setting or [s for s in SETTINGS if "first order" not in s]:
        backbone, queries, _ = SETTINGS[name]
        sampler = EpisodeSampler(glyphs, 5, 1, queries, seed=0)
        batch, other = [sampler.sample() for _ in range(32)], [sampler.sample() for _ in range(32)]
        base = MAML(make_model(backbone, "channels_last"), inner_lr=INNER_LR)
        reference = meta_gradient(copy.deepcopy(base).double(), in_float64(batch))
        variants = {
            "float32": meta_gradient(copy.deepcopy(base), batch),
            "bfloat16 query passes (precision: bfloat16)": meta_gradient(
                MAML(copy.deepcopy(base.model), inner_lr=INNER_LR, bfloat16_queries=True), batch
            ),
            "bfloat16 everywhere (autocast around the meta-loss)": meta_gradient(
                copy.deepcopy(base), batch, autocast_everything=True
            ),
            "float64, another meta-batch (sampling noise)": meta_gradient(
                copy.deepcopy(base).double(), in_float64(other)
            ),
        }
        append(
            "maml_precision",
            {
                "setting": f"5-way 1-shot {queries}-query, meta-batch 32, {backbone} 28x28, 1 inner step, second order, "
                "initial weights",
                "relative_distance_to_float64": {
                    k: round(((g - reference).norm() / reference.norm()).item(), 5) for k, g in variants.items()
                },
                "cosine_to_float64": {
                    k: round(torch.nn.functional.cosine_similarity(g, reference, 0).item(), 5)
                    for k, g in variants.items()
                },
            },
        )


if __name__ == "__main__":
    main()
