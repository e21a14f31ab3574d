"""Trained models outside their run folders: one self-describing file, and loading from either form.

``export_model`` writes weights, the run config, the input shape and the image preprocessing into a
single ``torch.save`` file, so ``ltl adapt`` and :class:`learntolearn.FewShotClassifier` need neither
the training code's config files nor the data set. The file carries a format version; a file of
another version is refused with both versions named.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from learntolearn.algorithms.base import Algorithm
from learntolearn.data import PREPROCESSING, Preprocessing, load_dataset
from learntolearn.engine.build import build_algorithm
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.provenance import provenance
from learntolearn.errors import ModelFileError
from learntolearn.files import load_tensors, save_tensors, write_json

FORMAT = "learntolearn-model"
FORMAT_VERSION = 2
#: format 1 (learntolearn 0.1) differs only in its flat config, which TrainConfig converts
READABLE_VERSIONS = (1, 2)


def package_version() -> str:
    try:
        return version("learntolearn")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class TrainedModel:
    """A trained algorithm with what is needed to feed it new images."""

    algorithm: Algorithm
    config: TrainConfig
    #: how image files become inputs; None for models of non-image data (e.g. sentence embeddings)
    preprocessing: Preprocessing | None
    source: Path

    @property
    def shots(self) -> int:
        return self.config.episodes.shots

    @property
    def fixed_ways(self) -> int | None:
        """The number of classes the model must be given (one output per way), or None if any number works."""
        return self.config.episodes.ways if self.algorithm.fixed_ways else None


def _model_spec(run: Path, config: TrainConfig, data_root: str | None) -> dict:
    """Input shape and training-class count; runs older than ``model_spec.json`` get it written once from the data."""
    path = run / "model_spec.json"
    if not path.exists():
        e = config.episodes
        data = load_dataset(
            e.dataset, e.split, e.train_subset, data_root=data_root, image_size=e.image_size, download=False
        )
        write_json(path, {"input_shape": list(data.input_shape), "train_classes": data.n_classes})
    return json.loads(path.read_text())


def load_run(run_dir: str | os.PathLike[str], data_root: str | None = None) -> TrainedModel:
    """The best checkpoint (else the last) of a run folder."""
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(
            f"{run} is not a run folder (no config.json); give a run folder or a file from `ltl export`"
        )
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    checkpoint = run / "best.pt" if (run / "best.pt").exists() else run / "last.pt"
    if not checkpoint.exists():
        raise ModelFileError(f"{run} has no checkpoint (best.pt or last.pt) yet")
    spec = _model_spec(run, config, data_root)
    algorithm = build_algorithm(
        config, tuple(spec["input_shape"]), spec["train_classes"], regression=spec.get("regression", False)
    )
    algorithm.load_state_dict(load_tensors(checkpoint)["model"])
    dataset = config.episodes.dataset
    preprocessing = PREPROCESSING.get(dataset)(config.episodes.image_size) if dataset in PREPROCESSING else None
    return TrainedModel(algorithm, config, preprocessing, checkpoint)


def export_model(
    run_dir: str | os.PathLike[str], path: str | os.PathLike[str], *, force: bool = False, data_root: str | None = None
) -> Path:
    """Write a run's best model as one self-describing file; refuses to overwrite unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it")
    model = load_run(run_dir, data_root)
    spec = _model_spec(Path(run_dir), model.config, data_root)
    save_tensors(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "learntolearn_version": package_version(),
            "config": model.config.to_dict(),
            "model_spec": spec,
            "preprocessing": None if model.preprocessing is None else model.preprocessing.to_dict(),
            "state_dict": model.algorithm.state_dict(),
            "exported_from": str(model.source),
            "provenance": provenance(),
        },
        path,
    )
    return path


def load_model_file(path: str | os.PathLike[str]) -> TrainedModel:
    """A model written by :func:`export_model`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        saved = load_tensors(path, "model file")
    except ModelFileError as err:
        raise ModelFileError(f"{err}; a learntolearn model file is written by `ltl export RUN_DIR --out FILE`") from err
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a learntolearn model file; write one with `ltl export RUN_DIR --out FILE`")
    if saved.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path} has model-file format {saved.get('format_version')} (written by learntolearn "
            f"{saved.get('learntolearn_version')}); this learntolearn {package_version()} reads format "
            f"{' and '.join(map(str, READABLE_VERSIONS))}: install the learntolearn version that wrote it, "
            f"or re-export the run"
        )
    config = TrainConfig.from_dict(saved["config"])
    spec = saved["model_spec"]
    algorithm = build_algorithm(
        config, tuple(spec["input_shape"]), spec["train_classes"], regression=spec.get("regression", False)
    )
    algorithm.load_state_dict(saved["state_dict"])
    preprocessing = None if saved["preprocessing"] is None else Preprocessing(**saved["preprocessing"])
    return TrainedModel(algorithm, config, preprocessing, path)


def load_trained(source: str | os.PathLike[str], data_root: str | None = None) -> TrainedModel:
    """A run folder or an exported model file."""
    return load_run(source, data_root) if Path(source).is_dir() else load_model_file(source)
