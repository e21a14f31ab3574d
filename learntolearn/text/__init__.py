"""Few-shot text classification on frozen sentence embeddings: episodic training and out-of-scope rejection.

Data loaders live in :mod:`learntolearn.data.text`, the encoder in :mod:`learntolearn.nn.text_encoder`;
this package holds what only the text setting needs.
"""

from learntolearn.text.classifier import TextFewShotClassifier, TextPrediction, read_texts
from learntolearn.text.episodic import meta_train
from learntolearn.text.out_of_scope import RejectionResult, choose_threshold, evaluate_with_rejection

__all__ = [
    "RejectionResult",
    "TextFewShotClassifier",
    "TextPrediction",
    "choose_threshold",
    "evaluate_with_rejection",
    "meta_train",
    "read_texts",
]
