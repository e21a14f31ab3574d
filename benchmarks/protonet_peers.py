"""Prototypical Networks training episodes per second: learntolearn against easyfsl, in one run.

    pip install easyfsl                 # optional, benchmark-only; reported as missing if it does not import
    python benchmarks/protonet_peers.py --data-root ../shared/data

Settings of the issue: 20-way and 60-way 5-shot episodes with 15 queries per class, conv4, 28x28
Omniglot (Vinyals train split; generated glyphs if no data root is given). Each implementation
runs a full training step per episode (embed, loss, backward, Adam step) on the same pre-drawn
episodes from the same initial weights; they run interleaved, round after round, and the median
rate is reported. easyfsl follows its documented episodic loop (``process_support_set`` then
``forward`` on the queries) with the standard conv4 (conv, BatchNorm, ReLU, max-pool; PyTorch's
default layout). "learntolearn, plain conv4" is our algorithm on that same network, to separate
what the algorithm code and what the backbone's layout and layer order contribute; "learntolearn,
bfloat16" adds mixed-precision convolutions (``--precision bfloat16``), whose accuracy is checked
against float32 by ``ltl reproduce precision``.

The process reuses freed buffers as ``ltl`` does (:mod:`learntolearn.engine.memory`), so every
implementation, peers included, runs on the same allocator setting; the record's "malloc" field
says which, and ``LTL_REUSE_FREED_MEMORY=0`` measures with the C library's defaults.

easyfsl imports torchvision at package import for its ResNets and data sets, which its ProtoNet
path never uses; when torchvision is absent the benchmark registers empty stand-ins for those
names before importing it.
"""

from __future__ import annotations

import argparse
import sys
import types

import torch
import torch.nn.functional as F
from record import append, interleaved_medians
from torch import nn

from learntolearn.algorithms import PrototypicalNetworks
from learntolearn.data import EpisodeSampler, load_dataset
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.nn.backbones import conv4


def papers_conv4() -> nn.Sequential:
    """conv4 as published (convolutions with bias, ReLU before pooling), NCHW, with the weights of our
    conv4 for the same seed (zero biases, which ours leaves out because BatchNorm cancels them)."""
    torch.manual_seed(0)
    ours = conv4()
    blocks = []
    for conv, bn, pool, relu in list(ours)[:4]:
        published = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding)
        with torch.no_grad():
            published.weight.copy_(conv.weight)
            published.bias.zero_()
        blocks.append(nn.Sequential(published, bn, relu, pool))
    return nn.Sequential(*blocks, nn.Flatten()).to(memory_format=torch.contiguous_format)


def import_easyfsl():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        names = {
            "torchvision.models.resnet": ["BasicBlock", "Bottleneck", "conv1x1", "conv3x3"],
            "torchvision.datasets": ["ImageFolder"],
            "torchvision.transforms": [],
        }
        for module_name, attributes in names.items():
            for prefix in ("torchvision", "torchvision.models", module_name):
                sys.modules.setdefault(prefix, types.ModuleType(prefix))
            for attribute in attributes:
                setattr(sys.modules[module_name], attribute, type(attribute, (), {}))
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    from easyfsl.methods import PrototypicalNetworks as EasyPrototypicalNetworks

    return EasyPrototypicalNetworks


def easyfsl_step():
    model = import_easyfsl()(papers_conv4())
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(task):
        model.train()
        model.process_support_set(task.support_x, task.support_y)
        loss = F.cross_entropy(model(task.query_x), task.query_y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def ours_step(backbone: nn.Module):
    model = PrototypicalNetworks(backbone)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(task):
        model.train()
        loss = model.meta_loss([task]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def learntolearn_default(bfloat16: bool = False):
    torch.manual_seed(0)
    backbone = (
        conv4().use_fused_blocks()
    )  # as `ltl` builds it for metric learners (EmbeddingAlgorithm.prepare_backbone)
    return ours_step(backbone.use_bfloat16() if bfloat16 else backbone)


IMPLEMENTATIONS = {
    "easyfsl": easyfsl_step,
    "learntolearn, plain conv4": lambda: ours_step(papers_conv4()),
    "learntolearn": learntolearn_default,
    "learntolearn, bfloat16": lambda: learntolearn_default(bfloat16=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=3, help="episodes per implementation per round")
    parser.add_argument("--ways", type=int, nargs="+", default=[20, 60])
    args = parser.parse_args()
    torch.set_num_threads(1)  # the rates are per core, as in every peer comparison here
    reuse_freed_memory()  # as `ltl` does, for every implementation in this process (LTL_REUSE_FREED_MEMORY=0: off)
    if args.data_root:
        data, source = (
            load_dataset("omniglot", "vinyals", "train", data_root=args.data_root, download=False),
            "Omniglot",
        )
    else:
        data, source = load_dataset("synthetic", "default", "train", image_size=28), "generated glyphs"
    for ways in args.ways:
        sampler = EpisodeSampler(data, ways, 5, 15, seed=0)
        episodes = [sampler.sample() for _ in range(args.episodes)]
        medians, missing = interleaved_medians(IMPLEMENTATIONS, episodes, args.rounds)
        append(
            "protonet_peers",
            {
                "setting": f"{ways}-way 5-shot 15-query, conv4 28x28, {source}",
                "episodes_per_s": {n: round(v, 3) for n, v in medians.items()},
                "missing": missing,
                "ours_over_easyfsl": round(medians["learntolearn"] / medians["easyfsl"], 2)
                if "easyfsl" in medians
                else None,
                "bfloat16_over_easyfsl": (
                    round(medians["learntolearn, bfloat16"] / medians["easyfsl"], 2) if "easyfsl" in medians else None
                ),
            },
        )


if __name__ == "__main__":
    main()
