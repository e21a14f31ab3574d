"""For practitioners: a text classifier from a few labelled examples per class, no training.

    from learntolearn.text import TextFewShotClassifier
    classifier = TextFewShotClassifier().fit_file("examples.csv")       # columns text,label (or JSONL)
    predictions = classifier.predict(["book a table for two", "what's my balance"])

Texts are embedded by the offline all-MiniLM-L6-v2 encoder; a logistic regression probe
(:class:`~learntolearn.algorithms.LogisticRegressionProbe`) fitted on the examples gives each query a
class and its probability, or cosine prototypes (``method="prototypes"``) give the nearest class
mean and its cosine similarity. The confidence is on that method's scale: a probability among the
given classes for ``logistic`` (1/N is chance with N classes, and with five examples per class
correct answers often score below 0.5), a cosine similarity for ``prototypes``.

Two ways to answer "none of these" (``out_of_scope``): ``reject_novel=True`` chooses the threshold
from the examples themselves by leave-one-out (:mod:`learntolearn.engine.novelty`: a query less
similar to every class than each example is to the others), whatever the method; ``reject_below``
rejects a query whose confidence is below a threshold you chose on the method's scale (on
CLINC150, ``choose_threshold`` picks one from labelled episodes).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from learntolearn.algorithms import LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.engine.evaluate import adapt_and_predict
from learntolearn.engine.novelty import NoveltyTest
from learntolearn.errors import ConfigError, DataError
from learntolearn.nn.text_encoder import SentenceEncoder

OUT_OF_SCOPE = "out_of_scope"
METHODS = ("logistic", "prototypes")


@dataclass(frozen=True)
class TextPrediction:
    text: str
    predicted_class: str
    confidence: float
    #: cosine similarity to the nearest class mean (with ``reject_novel``)
    similarity: float | None = None


def _read_lines(path: Path) -> list[str]:
    """The file's lines, decoded as UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one)."""
    try:
        return path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from err


def read_texts(path: str | os.PathLike[str], *, labelled: bool) -> tuple[list[str], list[str]]:
    """Texts (and labels when ``labelled``) from a CSV with a header (``text`` and ``label`` columns), a JSONL
    file of ``{"text": ..., "label": ...}`` objects, or (queries only) a plain file of one text per line."""
    path = Path(path)
    lines = _read_lines(path)
    texts, labels = [], []
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                texts.append(item["text"])
                labels.append(str(item["label"]) if labelled else "")
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                fields = '"text" and "label"' if labelled else '"text"'
                raise DataError(
                    f"{path}, line {number}: expected a JSON object with {fields} ({type(err).__name__}: {err})"
                ) from err
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(lines)
        needed = ["text", "label"] if labelled else ["text"]
        if not reader.fieldnames or any(column not in reader.fieldnames for column in needed):
            raise DataError(f"{path}: the header must name the columns {', '.join(needed)}; found {reader.fieldnames}")
        for number, row in enumerate(reader, 2):
            missing = [column for column in needed if row.get(column) is None]
            if missing:
                raise DataError(
                    f"{path}, line {number}: no value for {', '.join(missing)}; give every row a "
                    f"{' and a '.join(needed)}"
                )
            texts.append(row["text"])
            labels.append(row["label"] if labelled else "")
    elif labelled:
        raise DataError(f"{path}: labelled examples must be a .csv (columns text,label) or a .jsonl file")
    else:
        texts = [line for line in lines if line.strip()]
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: text {number} is empty; remove it or give it words")
    empty_labels = [number for number, label in enumerate(labels, 1) if labelled and not label.strip()]
    if empty_labels:
        raise DataError(f"{path}: text {empty_labels[0]} has an empty label")
    if not texts:
        raise DataError(f"{path} holds no texts")
    return texts, labels


class TextFewShotClassifier:
    """Few-shot text classification on frozen sentence embeddings; see the module docstring."""

    def __init__(
        self,
        method: str = "logistic",
        *,
        reject_below: float | None = None,
        reject_novel: bool = False,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if reject_below is not None and reject_novel:
            raise ConfigError(
                "choose one rejection rule: reject_below (your threshold) or reject_novel (from the examples)"
            )
        self.method, self.reject_below, self.reject_novel = method, reject_below, reject_novel
        self.encoder = encoder if encoder is not None else SentenceEncoder()
        self.algorithm = (
            LogisticRegressionProbe()
            if method == "logistic"
            else PrototypicalNetworks(nn.Identity(), distance="cosine")
        )
        self.classes: list[str] = []
        self.adapted: tuple[Tensor, Tensor] | None = None
        self.novelty: NoveltyTest | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, shots: int | None = None) -> TextFewShotClassifier:
        """Learn the classes of ``labels`` from ``texts``; with ``shots``, every class must have at least that many."""
        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels")
        counts = Counter(labels)
        if len(counts) < 2:
            raise DataError(f"need examples of at least 2 classes, got {sorted(counts)}")
        if shots is not None:
            short = sorted(f"{label} ({n})" for label, n in counts.items() if n < shots)
            if short:
                raise DataError(
                    f"{shots} examples per class were asked for, but {', '.join(short)} "
                    f"{'has' if len(short) == 1 else 'have'} fewer; add examples or lower --shots"
                )
            if any(n > shots for n in counts.values()):
                warnings.warn(f"some classes have more than {shots} examples; all of them are used", stacklevel=2)
        self.classes = sorted(counts)
        index = {label: i for i, label in enumerate(self.classes)}
        features = self.encoder.encode(list(texts))
        targets = torch.tensor([index[label] for label in labels])
        self.adapted = (features, targets)
        self.novelty = NoveltyTest.fit(features, targets) if self.reject_novel else None
        return self

    def fit_file(self, path: str | os.PathLike[str], *, shots: int | None = None) -> TextFewShotClassifier:
        """:meth:`fit` on a CSV (text,label) or JSONL file."""
        texts, labels = read_texts(path, labelled=True)
        return self.fit(texts, labels, shots=shots)

    def predict(self, texts: Sequence[str] | str) -> list[TextPrediction]:
        """Predictions for ``texts`` (a single string counts as one text, not as its characters)."""
        if isinstance(texts, str):
            texts = [texts]
        if self.adapted is None:
            raise RuntimeError("call fit() or fit_file() with labelled examples before predict()")
        support, targets = self.adapted
        queries = self.encoder.encode(list(texts))
        outputs = adapt_and_predict(self.algorithm, support, targets, queries)
        scores = outputs.softmax(-1) if self.method == "logistic" else outputs
        confidence, predicted = scores.max(-1)
        rejected = (
            confidence < self.reject_below
            if self.reject_below is not None
            else torch.zeros_like(predicted, dtype=torch.bool)
        )
        similarities: list[float | None] = [None] * len(texts)
        if self.novelty is not None:
            similarity = self.novelty.similarity(queries)
            rejected = self.novelty.is_novel(similarity)
            similarities = similarity.tolist()
        return [
            TextPrediction(text, OUT_OF_SCOPE if r else self.classes[p], float(c), s)
            for text, c, p, r, s in zip(texts, confidence.tolist(), predicted.tolist(), rejected.tolist(), similarities)
        ]
