"""End-to-end MAML meta-iterations per second, task sampling included: learntolearn against learn2learn.

learn2learn's PyPI release (0.2.0) ships Cython sources that do not build on Python 3.11, and
imports torchvision, which does not import beside torch 2.13 here. It runs in a separate
benchmark environment with torch 2.14.1 and its matching torchvision 0.29.1:

    python -m venv /tmp/l2lvenv && . /tmp/l2lvenv/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 cython numpy scipy requests tqdm gym qpth
    pip download learn2learn==0.2.0 --no-deps --no-binary learn2learn --no-build-isolation
    tar xzf learn2learn-0.2.0.tar.gz
    (cd learn2learn-0.2.0 && rm learn2learn/data/*.c && python setup.py build_ext --inplace \
        && pip install --no-deps --no-build-isolation .)
    pip install pillow click pyyaml && pip install --no-deps -e .   # learntolearn, in the same environment
    python benchmarks/maml_end_to_end.py --data-root ../shared/data

Setting: MAML's own Omniglot protocol, 5-way 1-shot with 1 query per class, meta-batch 32, one
inner SGD step of 0.4, second order, Adam 1e-3 outer step, one thread.

* learn2learn: its benchmark taskset (``get_tasksets("omniglot")``: torchvision's Omniglot read
  from the official zips, LANCZOS resize to 28x28, random rotation classes), its ``OmniglotCNN``
  (strided conv4 with BatchNorm, Finn et al.'s network) and ``l2l.algorithms.MAML`` with
  ``clone()`` / ``adapt()``, one task at a time as in its ``examples/vision/maml_omniglot.py``.
* learntolearn: ``ltl train --preset maml-omniglot-5w1s``'s own :class:`Trainer` (Vinyals split
  read from the same zips, episode sampler, the preset's strided conv4 and MAML path), run for a
  number of steps per round.

Both sides time whole meta-iterations (sampling, inner step, meta-gradient, outer step); data
loading before the first iteration is excluded. The implementations alternate round by round and
the median rate of each is reported. Appends to benchmarks/results/maml_end_to_end.jsonl.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from record import append

from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.trainer import Trainer
from learntolearn.experiments.presets import get_preset

WAYS, SHOTS, QUERIES, META_BATCH, INNER_LR = 5, 1, 1, 32, 0.4


def learn2learn_pipeline(data_root: str, workdir: Path):
    """learn2learn's taskset + OmniglotCNN + MAML; returns a function running ``n`` meta-iterations."""
    import learn2learn as l2l
    from torchvision.datasets import Omniglot

    for archive in ("images_background.zip", "images_evaluation.zip"):
        with zipfile.ZipFile(Path(data_root, "omniglot", archive)) as zipped:
            zipped.extractall(workdir / "omniglot-py")
    # torchvision checks each zip's MD5 against its mirror's bytes; the shared copies hold the same images in
    # differently compressed zips, so they are extracted where torchvision looks and that check is skipped.
    Omniglot._check_integrity = lambda self: True
    tasksets = l2l.vision.benchmarks.get_tasksets(
        "omniglot",
        train_ways=WAYS,
        train_samples=SHOTS + QUERIES,
        test_ways=WAYS,
        test_samples=SHOTS + QUERIES,
        root=str(workdir),
    )
    torch.manual_seed(0)
    maml = l2l.algorithms.MAML(l2l.vision.models.OmniglotCNN(WAYS), lr=INNER_LR, first_order=False)
    optimizer = torch.optim.Adam(maml.parameters(), 1e-3)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            optimizer.zero_grad()
            for _ in range(META_BATCH):
                images, labels = tasksets.train.sample()
                support = torch.zeros(len(labels), dtype=torch.bool)
                support[:: SHOTS + QUERIES] = True  # the taskset groups each class's samples together
                learner = maml.clone()
                learner.adapt(F.cross_entropy(learner(images[support]), labels[support]))
                (F.cross_entropy(learner(images[~support]), labels[~support]) / META_BATCH).backward()
            optimizer.step()

    return run


def learntolearn_pipeline(data_root: str, workdir: Path):
    """The preset's Trainer, stepped ``n`` more meta-iterations per call."""
    config = get_preset("maml-omniglot-5w1s").config.with_keys(
        steps=1, val_every=0, test_episodes=2, checkpoint_every=10**9
    )
    trainer = Trainer(config, workdir / "run", data_root=data_root, progress=False)

    def run(iterations: int) -> None:
        trainer.config = trainer.config.with_keys(steps=trainer.step + iterations)
        trainer.train()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("LTL_DATA", "../shared/data"))
    parser.add_argument("--iterations", type=int, default=10, help="meta-iterations per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reuse_freed_memory()  # as `ltl` does (LTL_REUSE_FREED_MEMORY=0: the C library's defaults)
    torch.set_num_threads(1)
    builders = {"learn2learn": learn2learn_pipeline, "learntolearn": learntolearn_pipeline}
    with tempfile.TemporaryDirectory() as tmp:
        runs, missing = {}, {}
        for name, build in builders.items():
            try:
                workdir = Path(tmp, name)
                workdir.mkdir()
                runs[name] = build(args.data_root, workdir)
                runs[name](1)  # warm-up: first-touch allocations, lazy imports
            except ImportError as err:
                missing[name] = f"not installed ({err})"
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run(args.iterations)
                rates[name].append(args.iterations / (time.perf_counter() - start))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    ratio = medians["learntolearn"] / medians["learn2learn"] if len(medians) == 2 else None
    append(
        "maml_end_to_end",
        {
            "setting": f"maml {WAYS}w{SHOTS}s{QUERIES}q meta-batch {META_BATCH}, sampling included, 1 thread",
            "meta_iterations_per_s": medians,
            "rounds": rates,
            "missing": missing,
            "torch": torch.__version__,
            "learntolearn_over_learn2learn": ratio,
        },
    )


if __name__ == "__main__":
    main()
