"""Episodic data: in-memory image data sets, seeded episode samplers, fixed evaluation episodes."""

from __future__ import annotations

from collections.abc import Callable

from learntolearn.data.imagenet_like import (
    CIFAR_SPLITS,
    load_cifar_fs,
    load_mini_imagenet,
    load_tiered_imagenet,
    photo_preprocessing,
)
from learntolearn.data.images import Preprocessing
from learntolearn.data.indexed import EpisodicData, ImageClassDataset
from learntolearn.data.omniglot import SPLITS as OMNIGLOT_SPLITS
from learntolearn.data.omniglot import load_omniglot
from learntolearn.data.omniglot import preprocessing as omniglot_preprocessing
from learntolearn.data.sampler import TEST_EPISODE_SEED, VAL_EPISODE_SEED, EpisodeSampler, EpisodeSet
from learntolearn.data.synthetic import SPLITS as SYNTHETIC_SPLITS
from learntolearn.data.synthetic import load_synthetic
from learntolearn.data.synthetic import preprocessing as synthetic_preprocessing
from learntolearn.data.text import CLINC_SPLITS, FEWREL_SPLITS, load_clinc150_features, load_fewrel_features
from learntolearn.errors import UnknownNameError
from learntolearn.registry import Registry

#: name -> (loader(split, subset, *, data_root, image_size, download), {split: subsets})
DATASETS: Registry[tuple[Callable[..., EpisodicData], dict[str, tuple[str, ...]]]] = Registry("data set")
DATASETS.register("omniglot")((load_omniglot, OMNIGLOT_SPLITS))
DATASETS.register("synthetic")((load_synthetic, SYNTHETIC_SPLITS))
#: CLINC150 intents as sentence embeddings (needs the text extra); its subsets are sets of intents
DATASETS.register("clinc150")((load_clinc150_features, {split: ("train", "val", "test") for split in CLINC_SPLITS}))
#: FewRel relations as sentence embeddings (needs the text extra); its subsets are its published files
DATASETS.register("fewrel")((load_fewrel_features, FEWREL_SPLITS))

#: photo benchmarks read from the published files (none can be downloaded here; see data.imagenet_like)
DATASETS.register("cifar100")((load_cifar_fs, {split: tuple(subsets) for split, subsets in CIFAR_SPLITS.items()}))
DATASETS.register("mini_imagenet")((load_mini_imagenet, {"ravi": ("train", "val", "test")}))
DATASETS.register("tiered_imagenet")((load_tiered_imagenet, {"ren": ("train", "val", "test")}))

#: task distributions generated in code rather than drawn from a class data set (see engine.sources)
GENERATED_TASKS = ("sinusoid",)

#: name -> image_size -> how the data set's image files become tensors (applied to a user's images by ``ltl adapt``)
PREPROCESSING: Registry[Callable[[int], Preprocessing]] = Registry("data set")
PREPROCESSING.register("omniglot")(omniglot_preprocessing)
PREPROCESSING.register("synthetic")(synthetic_preprocessing)
PREPROCESSING.register("cifar100")(photo_preprocessing)
PREPROCESSING.register("mini_imagenet")(photo_preprocessing)
PREPROCESSING.register("tiered_imagenet")(photo_preprocessing)


def load_dataset(name: str, split: str, subset: str, **options) -> EpisodicData:
    """Load ``subset`` of ``split`` of the registered data set ``name``."""
    loader, splits = DATASETS.get(name)
    if split not in splits:
        raise UnknownNameError(f"unknown split {split!r} of data set {name!r}; valid splits: {', '.join(splits)}")
    if subset not in splits[split]:
        raise UnknownNameError(
            f"unknown subset {subset!r} of {name}/{split}; valid subsets: {', '.join(splits[split])}"
        )
    return loader(split, subset, **options)


__all__ = [
    "DATASETS",
    "PREPROCESSING",
    "TEST_EPISODE_SEED",
    "VAL_EPISODE_SEED",
    "EpisodeSampler",
    "EpisodeSet",
    "ImageClassDataset",
    "Preprocessing",
    "load_dataset",
    "load_omniglot",
    "load_synthetic",
]
