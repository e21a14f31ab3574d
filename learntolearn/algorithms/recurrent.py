"""A recurrent meta-learner that learns in context (Santoro et al. 2016; Hochreiter et al. 2001;
Mishra et al. 2018 for the attention variant).

The support set is read as a sequence of tokens ``[embedding(x_i); one_hot(y_i)]`` and each query
as ``[embedding(x); 0]``; a sequence model maps the query's token, in the context of the support
tokens, to class logits. Nothing is adapted by gradient steps: learning a new task happens in the
model's state. Two sequence models:

* ``lstm``: an LSTM reads the support tokens in order (shuffled during meta-training so that the
  learner does not rely on order), then each query token from the final state.
* ``transformer``: a small transformer encoder without positional encodings, so the support set
  is read as a set; a query attends to every support token and to itself, not to other queries,
  so queries are predicted independently, as if each were appended alone after the support set.

Labels are one-hot over ``max_ways`` classes; a task with more classes is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, EmbeddingAlgorithm, ModelSetting, flat_embeddings
from learntolearn.errors import ConfigError, TaskError
from learntolearn.settings import setting

SEQUENCE_MODELS = ("lstm", "transformer")


@dataclass(frozen=True)
class RecurrentConfig(AlgorithmConfig):
    """The recurrent learner's settings."""

    section = "recurrent"

    sequence_model: str = setting("lstm", "The sequence model over (input, label) tokens.", choices=SEQUENCE_MODELS)


@ALGORITHMS.register("recurrent")
class RecurrentLearner(EmbeddingAlgorithm):
    """In-context few-shot classifier: backbone embeddings + a sequence model over (x, y) tokens."""

    Config = RecurrentConfig

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        max_ways: int,
        *,
        sequence_model: str = "lstm",
        hidden: int = 128,
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if sequence_model not in SEQUENCE_MODELS:
            raise ConfigError(f"unknown sequence_model {sequence_model!r}; valid: {', '.join(SEQUENCE_MODELS)}")
        self.backbone, self.max_ways, self.sequence_model = backbone, max_ways, sequence_model
        self.tokens = nn.Linear(embedding_dim + max_ways, hidden)
        self.core: nn.Module
        if sequence_model == "lstm":
            self.core = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        else:
            layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True)
            self.core = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.readout = nn.Linear(hidden, max_ways)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> RecurrentLearner:
        return cls(backbone, setting.output_shape[0], setting.max_ways, **config.to_dict())

    def embed(self, x: Tensor) -> Tensor:
        return flat_embeddings(self.backbone(x), "the recurrent learner")

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        if ways > self.max_ways:
            raise TaskError(
                f"this recurrent learner encodes labels of up to {self.max_ways} classes, but the task has "
                f"{ways}; build it with max_ways >= {ways} (config: ways / train_ways)"
            )
        if self.training:
            order = self.permutation(support.shape[0], support.device)
            support, support_y = support[order], support_y[order]
        labelled = self.tokens(torch.cat([support, F.one_hot(support_y, self.max_ways).to(support.dtype)], dim=-1))
        unlabelled = self.tokens(torch.cat([query, query.new_zeros(query.shape[0], self.max_ways)], dim=-1))
        if self.sequence_model == "lstm":
            _, state = self.core(labelled.unsqueeze(0))
            n = query.shape[0]
            state = tuple(s.expand(-1, n, -1).contiguous() for s in state)
            out, _ = self.core(unlabelled.unsqueeze(1), state)
            features = out[:, -1]
        else:
            tokens = torch.cat([labelled, unlabelled]).unsqueeze(0)
            s, n = labelled.shape[0], unlabelled.shape[0]
            blocked = torch.ones(s + n, s + n, dtype=torch.bool, device=tokens.device)
            blocked[:, :s] = False
            blocked[s:, s:] = ~torch.eye(n, dtype=torch.bool, device=tokens.device)
            features = self.core(tokens, mask=blocked)[0, s:]
        return self.readout(features)[:, :ways]
