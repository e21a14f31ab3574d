"""Named run configs that reproduce paper settings; ``ltl presets`` lists them, ``ltl train --preset`` runs one.

Each preset says where it follows its paper and where it deviates. Shared defaults: 28x28
Omniglot on the Vinyals split with rotation classes, fixed validation and test episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from learntolearn.registry import Registry


@dataclass(frozen=True)
class Preset:
    source: str
    deviations: str
    config: dict = field(default_factory=dict)


PRESETS: Registry[Preset] = Registry("preset")

_OMNIGLOT = {"dataset": "omniglot", "split": "vinyals", "image_size": 28, "val_every": 500, "val_episodes": 500,
             "test_episodes": 1000}
_MAML = {**_OMNIGLOT, "backbone": "conv4-strided", "outer_optimizer": "adam", "lr": 1e-3, "lr_halve_every": 10**9,
         "batched": True, "checkpoint_every": 100}

PRESETS.register("protonet-omniglot-5w1s")(Preset(
    "Snell et al. 2017, Section 3.1: conv4 with max-pooling, 60-way training episodes with 5 queries, "
    "Adam 1e-3 halved every 2,000 episodes, 5-way 1-shot test",
    "trained on `train` with the best `val` checkpoint kept (the paper retrains on train+val); "
    "8,000 episodes; tested with 15 queries per class",
    {**_OMNIGLOT, "algorithm": "protonet", "backbone": "conv4", "ways": 5, "shots": 1, "queries": 15,
     "train_ways": 60, "train_queries": 5, "steps": 8000, "lr": 1e-3, "lr_halve_every": 2000}))

PRESETS.register("protonet-omniglot-20w1s")(Preset(
    "Snell et al. 2017, Section 3.1, 20-way 1-shot test", "as protonet-omniglot-5w1s",
    {**PRESETS.get("protonet-omniglot-5w1s").config, "ways": 20}))

PRESETS.register("maml-omniglot-5w1s")(Preset(
    "Finn et al. 2017, Section 5.2 and Appendix A.1: strided conv4 (no max-pooling) with BatchNorm, "
    "inner lr 0.4, 1 inner step in training and 3 at test, meta-batch 32, Adam 1e-3, 60,000 iterations, "
    "K queries per class",
    "the test accuracy is over 1,000 fixed episodes",
    {**_MAML, "algorithm": "maml", "ways": 5, "shots": 1, "queries": 1, "meta_batch": 32, "steps": 60000,
     "inner_lr": 0.4, "inner_steps": 1, "test_inner_steps": 3, "batched": False, "compiled": True}))

PRESETS.register("fomaml-omniglot-5w1s")(Preset(
    "Finn et al. 2017, Section 5.2, first-order approximation", "as maml-omniglot-5w1s",
    {**PRESETS.get("maml-omniglot-5w1s").config, "first_order": True}))

PRESETS.register("maml-omniglot-20w1s")(Preset(
    "Finn et al. 2017, Appendix A.1: 20-way with inner lr 0.1, 5 inner steps in training and at test, "
    "meta-batch 16", "as maml-omniglot-5w1s",
    {**_MAML, "algorithm": "maml", "ways": 20, "shots": 1, "queries": 1, "meta_batch": 16, "steps": 60000,
     "inner_lr": 0.1, "inner_steps": 5, "test_inner_steps": 5}))

PRESETS.register("reptile-omniglot-5w1s")(Preset(
    "Nichol et al. 2018, Appendix A (and the flags and model of its released code): strided conv4, 10-shot "
    "training tasks, 5 inner steps of Adam (beta1 = 0, lr 1e-3, moments carried across tasks) on minibatches of "
    "10, 50 full-batch steps at test, meta-batch 5, outer step 1 annealed linearly to 0 over 100,000 iterations, "
    "transductive BatchNorm",
    "PyTorch's symmetric padding for the stride-2 convolutions (TensorFlow's 'same' pads right and bottom only); "
    "the Vinyals split's 1,028 training characters with a validation set (the authors train on 1,200 and keep "
    "no validation set)",
    {**_OMNIGLOT, "algorithm": "reptile", "backbone": "conv4-strided", "ways": 5, "shots": 1, "queries": 1,
     "train_shots": 10, "inner_batch": 10, "meta_batch": 5, "steps": 100000, "outer_optimizer": "sgd", "lr": 1.0,
     "lr_schedule": "linear", "inner_optimizer": "adam", "inner_lr": 1e-3, "inner_steps": 5, "test_inner_steps": 50}))

PRESETS.register("reptile-omniglot-5w1s-30k")(Preset(
    "as reptile-omniglot-5w1s (Nichol et al. 2018), on 30% of its compute",
    "as reptile-omniglot-5w1s, and the schedule compressed: 30,000 iterations, the outer step annealed linearly "
    "from 1 to 0 over them instead of over 100,000",
    {**PRESETS.get("reptile-omniglot-5w1s").config, "steps": 30000, "val_every": 2500}))

PRESETS.register("protonet-lake-background")(Preset(
    "Lake et al. 2015 protocol: train on the background set only (no rotations), test 20-way 1-shot "
    "within the evaluation alphabets; ProtoNets as in Snell et al. 2017 with 60-way training episodes",
    "a short schedule (2,000 episodes); no validation split, the last checkpoint is used",
    {**_OMNIGLOT, "algorithm": "protonet", "backbone": "conv4", "split": "lake", "train_subset": "background",
     "test_subset": "evaluation", "val_every": 0, "ways": 20, "shots": 1, "queries": 1, "train_ways": 60,
     "train_queries": 5, "steps": 2000, "lr": 1e-3, "lr_halve_every": 2000}))

_SMOKE = {"dataset": "synthetic", "split": "default", "image_size": 16, "ways": 5, "shots": 1, "queries": 3,
          "val_every": 20, "val_episodes": 20, "test_episodes": 50, "checkpoint_every": 20}
PRESETS.register("protonet-synthetic-smoke")(Preset(
    "no paper: 60 steps on generated glyphs, to try `ltl reproduce smoke` in seconds", "not a paper setting",
    {**_SMOKE, "algorithm": "protonet", "steps": 60}))
PRESETS.register("anil-synthetic-smoke")(Preset(
    "no paper: 60 steps of ANIL on generated glyphs, to try `ltl reproduce smoke` in seconds", "not a paper setting",
    {**_SMOKE, "algorithm": "anil", "steps": 60, "meta_batch": 4, "inner_lr": 0.4, "inner_steps": 1,
     "test_inner_steps": 3}))

PRESETS.register("matching-omniglot-1shot")(Preset(
    "Vinyals et al. 2016, Section 4.1.1: conv4 embedding, softmax attention over cosine similarities, "
    "no full context embeddings (the paper's Omniglot rows), tested 5-way and 20-way 1-shot",
    "attention over cosine similarities times a learned scale (scaled-cosine): with the paper's plain cosine, "
    "training stalled near 86% 5-way validation accuracy; the paper does not state its training episodes: "
    "20-way 1-shot with 5 queries here, Adam 1e-3 halved every 2,000 episodes, 10,000 episodes, best of 500 "
    "validation episodes kept",
    {**_OMNIGLOT, "algorithm": "matching", "backbone": "conv4", "ways": 5, "shots": 1, "queries": 15,
     "distance": "scaled-cosine",
     "train_ways": 20, "train_queries": 5, "steps": 10000, "lr": 1e-3, "lr_halve_every": 2000}))

PRESETS.register("relation-omniglot-5w1s")(Preset(
    "Sung et al. 2018, Section 4.1: embedding and relation modules of Figure 2, MSE on one-hot targets, "
    "5-way 1-shot training episodes with 19 queries per class, Adam 1e-3",
    "10,000 episodes instead of 1,000,000, the step size halved every 2,000 rather than 100,000; best of 500 "
    "validation episodes kept; tested with 15 queries",
    {**_OMNIGLOT, "algorithm": "relation", "backbone": "conv4-maps", "ways": 5, "shots": 1, "queries": 15,
     "train_queries": 19, "steps": 10000, "lr": 1e-3, "lr_halve_every": 2000}))

PRESETS.register("relation-omniglot-5w5s")(Preset(
    "Sung et al. 2018, Section 4.1: as relation-omniglot-5w1s with 5-way 5-shot training episodes and 15 queries "
    "per class; the relation module compares the sum of a class's 5 support feature maps with each query",
    "as relation-omniglot-5w1s",
    {**PRESETS.get("relation-omniglot-5w1s").config, "shots": 5, "train_queries": 15}))

_SHORT_PROTONET = {**_OMNIGLOT, "algorithm": "protonet", "backbone": "conv4", "ways": 5, "shots": 1, "queries": 15,
                   "train_ways": 20, "train_queries": 5, "steps": 2000, "lr": 1e-3, "lr_halve_every": 2000}
PRESETS.register("protonet-omniglot-short")(Preset(
    "ProtoNets on Omniglot at the `ltl demo` scale (2,000 20-way 1-shot episodes): the float32 side of the "
    "precision check", "not a paper setting: short, 20-way training",
    _SHORT_PROTONET))
PRESETS.register("protonet-omniglot-short-bf16")(Preset(
    "as protonet-omniglot-short with bfloat16 mixed-precision convolutions: the other side of the precision check",
    "not a paper setting", {**_SHORT_PROTONET, "precision": "bfloat16"}))

_SHORT_MAML = {**_MAML, "algorithm": "maml", "backbone": "conv4", "batched": False, "ways": 5, "shots": 1,
               "queries": 15, "meta_batch": 8, "steps": 1000, "val_every": 250, "val_episodes": 200,
               "inner_lr": 0.4, "inner_steps": 1, "test_inner_steps": 3}
PRESETS.register("maml-omniglot-short")(Preset(
    "second-order MAML on Omniglot in the 15-query setting of benchmarks/maml_peers.py (max-pooling conv4, "
    "task loop), 1,000 meta-batches of 8: the float32 side of MAML's precision check",
    "not a paper setting: short, 15 queries", _SHORT_MAML))
PRESETS.register("maml-omniglot-short-bf16")(Preset(
    "as maml-omniglot-short with the query passes under bfloat16 autocast (inner loop float32): the other side "
    "of MAML's precision check", "not a paper setting", {**_SHORT_MAML, "precision": "bfloat16"}))

_SHORT_FOMAML = {**PRESETS.get("fomaml-omniglot-5w1s").config, "batched": False, "compiled": True, "steps": 2000,
                 "val_every": 500, "val_episodes": 200}
PRESETS.register("fomaml-omniglot-short")(Preset(
    "first-order MAML in MAML's own Omniglot setting (fomaml-omniglot-5w1s) on its fastest path, the compiled "
    "task loop, for 2,000 meta-iterations: the float32 side of the precision check of that setting",
    "not a paper setting: 2,000 of 60,000 iterations", _SHORT_FOMAML))
PRESETS.register("fomaml-omniglot-short-bf16")(Preset(
    "as fomaml-omniglot-short with the query passes under bfloat16 autocast (inner loop float32)",
    "not a paper setting", {**_SHORT_FOMAML, "precision": "bfloat16"}))

PRESETS.register("mann-omniglot-5way")(Preset(
    "Santoro et al. 2016, Section 4.1: raw 20x20 pixels, LSTM controller of 200 units, 128x40 memory, 4 read "
    "heads, usage decay 0.95, episodes of 5 classes x 10 instances presented in random order with labels one "
    "step late, meta-batch 16",
    "Adam 1e-3 instead of RMSprop 1e-4; no rotation/translation augmentation; one-hot labels; Vinyals split "
    "(rotations as classes); 10,000 episodes instead of 100,000",
    {**_OMNIGLOT, "algorithm": "mann", "backbone": "pixels", "image_size": 20, "ways": 5, "shots": 1,
     "queries": 9, "meta_batch": 16, "steps": 10000, "lr": 1e-3, "lr_halve_every": 10**9, "val_every": 1000,
     "val_episodes": 200, "test_episodes": 500}))

for _name, _algorithm, _extra in (("matching-lake-background", "matching", {"distance": "scaled-cosine"}),
                                  ("siamese-lake-background", "siamese", {})):
    PRESETS.register(_name)(Preset(
        f"the Lake et al. 2015 protocol of protonet-lake-background with {_algorithm} networks"
        + (" (Koch et al. 2015 is the classic baseline of these runs)" if _algorithm == "siamese" else ""),
        "as protonet-lake-background" + ("; learned-scale cosine attention" if _extra else "")
        + ("; the twin is conv4 at 28x28, trained on all query-support pairs of 60-way episodes, not the paper's "
           "105x105 network on sampled pairs" if _algorithm == "siamese" else ""),
        {**PRESETS.get("protonet-lake-background").config, "algorithm": _algorithm, **_extra}))

PRESETS.register("recurrent-omniglot-5w1s")(Preset(
    "a recurrent (in-context) meta-learner on Omniglot 5-way 1-shot: conv4 embeddings read with their one-hot "
    "labels by a small transformer (Mishra et al. 2018 use temporal convolutions and attention; Santoro et al. "
    "2016 an LSTM)", "not a paper's exact architecture: 2 transformer layers of 128 units, 4 heads; 5-way 1-shot "
    "training episodes with 15 queries, meta-batch 4, Adam 1e-3, 10,000 steps, best of 500 validation episodes",
    {**_OMNIGLOT, "algorithm": "recurrent", "backbone": "conv4", "sequence_model": "transformer", "ways": 5,
     "shots": 1, "queries": 15, "meta_batch": 4, "steps": 10000, "lr": 1e-3, "lr_halve_every": 10**9}))
