"""For practitioners: adapt a trained model to your own classes from a few labelled images.

    from learntolearn import FewShotClassifier
    classifier = FewShotClassifier.load("model.ltl").fit("support/")
    predictions = classifier.predict("query/")

``support/`` holds one sub-folder of PNG/JPEG images per class; ``predict`` returns one
:class:`Prediction` (file, class, confidence) per image of the query folder.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from learntolearn.data.images import read_query_folder, read_support_folder, to_float
from learntolearn.engine.evaluate import adapt_and_predict
from learntolearn.engine.model_file import TrainedModel, load_trained
from learntolearn.errors import DataError, ModelFileError


@dataclass(frozen=True)
class Prediction:
    file: str
    predicted_class: str
    confidence: float


class FewShotClassifier:
    """A trained meta-learner plus the support set of the user's classes."""

    def __init__(self, model: TrainedModel) -> None:
        if model.preprocessing is None:
            raise ModelFileError(
                f"{model.source} was trained on {model.config.episodes.dataset}, not on images; "
                f"give a model trained on an image data set"
            )
        self.model, self.preprocessing = model, model.preprocessing
        self.support: tuple[Tensor, Tensor] | None = None
        self.classes: list[str] = []

    @classmethod
    def load(cls, source: str | os.PathLike[str], data_root: str | None = None) -> FewShotClassifier:
        """From a model file written by ``ltl export`` or from a run folder."""
        return cls(load_trained(source, data_root))

    def fit(self, support_folder: str | os.PathLike[str], *, allow_fewer_shots: bool = False) -> FewShotClassifier:
        """Read ``support_folder/<class>/*.png|jpg`` as the classes to recognise.

        A class with more images than the model's shot setting uses them all (with a warning); one
        with fewer is an error unless ``allow_fewer_shots``.
        """
        images, labels, classes = read_support_folder(support_folder, self.preprocessing)
        ways, shots = self.model.fixed_ways, self.model.shots
        if ways is not None and len(classes) != ways:
            raise DataError(
                f"this {self.model.config.algorithm} model has one output per class and was meta-trained "
                f"for {ways}-way tasks, but {support_folder} has {len(classes)} class folders; "
                f"give it exactly {ways} classes or use a model trained for {len(classes)}-way tasks"
            )
        counts = torch.bincount(labels, minlength=len(classes)).tolist()
        fewer = [f"{name} ({n})" for name, n in zip(classes, counts) if n < shots]
        if fewer and not allow_fewer_shots:
            raise DataError(
                f"the model was meta-trained with {shots} examples per class, but these classes have fewer: "
                f"{', '.join(fewer)}; add images, or allow it (--allow-fewer-shots / allow_fewer_shots=True)"
            )
        more = [f"{name} ({n})" for name, n in zip(classes, counts) if n > shots]
        if more:
            warnings.warn(
                f"the model was meta-trained with {shots} example(s) per class; using all images of {', '.join(more)}",
                stacklevel=2,
            )
        self.support, self.classes = (to_float(images), labels), classes
        return self

    def predict_tensor(self, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted class indices and their probabilities for preprocessed float images ``(n, C, H, W)``."""
        if self.support is None:
            raise RuntimeError("call fit(support_folder) before predict")
        outputs = adapt_and_predict(self.model.algorithm, *self.support, query_x)
        confidence, predicted = self.model.algorithm.probabilities(outputs).max(-1)
        return predicted, confidence

    def predict(self, query_folder: str | os.PathLike[str]) -> list[Prediction]:
        """One prediction per PNG/JPEG file of ``query_folder``."""
        images, files = read_query_folder(query_folder, self.preprocessing)
        predicted, confidence = self.predict_tensor(to_float(images))
        return [
            Prediction(str(Path(f)), self.classes[int(p)], float(c)) for f, p, c in zip(files, predicted, confidence)
        ]
