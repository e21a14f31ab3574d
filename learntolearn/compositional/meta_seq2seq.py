"""Meta sequence-to-sequence learning (Lake, NeurIPS 2019, "Compositional generalization through meta
sequence-to-sequence learning", Section 3).

An episode's study examples (input and output sequences) are written into a key-value memory: the
key of a study example is its input encoded by the same bidirectional LSTM that reads the query, the
value its output encoded by a bidirectional LSTM of output tokens (each encoder sums its two
directions). Every position of the query's encoding looks up the memory by scaled dot-product attention
and is combined with what it retrieves; an LSTM decoder, started from the query's last combined state,
attends over those combined states and emits the output tokens. As in the authors' code
(facebookresearch/meta_seq2seq), the LSTMs have ``layers`` layers and dropout acts on the token
embeddings and between LSTM layers only. Trained across episodes whose study
examples change what the words mean, the network learns to read meanings off the study examples.
Token id 0 is padding, 1 starts a sequence and 2 ends it (:class:`learntolearn.data.scan.Vocabulary`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD, SOS, EOS = 0, 1, 2
#: the network's version, stored with results: 1 concatenated half-width directions and dropped memory and
#: readout states; 2 follows the authors' code (summed full-width directions, embedding dropout only)
NETWORK_VERSION = 2


def pad(sequences: list[list[int]]) -> Tensor:
    """Id lists -> a ``(batch, longest)`` tensor padded with 0."""
    out = torch.zeros(len(sequences), max(len(s) for s in sequences), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = torch.tensor(sequence)
    return out


class MetaSeq2Seq(nn.Module):
    """The meta seq2seq network for input and output vocabularies of the given sizes (``hidden`` units)."""

    def __init__(
        self, input_vocabulary: int, output_vocabulary: int, hidden: int = 128, dropout: float = 0.1, layers: int = 1
    ) -> None:
        super().__init__()
        between = dropout if layers > 1 else 0.0
        self.input_embedding = nn.Embedding(input_vocabulary, hidden, padding_idx=PAD)
        self.output_embedding = nn.Embedding(output_vocabulary, hidden, padding_idx=PAD)
        self.input_encoder = nn.LSTM(hidden, hidden, layers, batch_first=True, bidirectional=True, dropout=between)
        self.output_encoder = nn.LSTM(hidden, hidden, layers, batch_first=True, bidirectional=True, dropout=between)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.LSTM(hidden, hidden, layers, batch_first=True, dropout=between)
        self.attended = nn.Linear(2 * hidden, hidden)
        self.readout = nn.Linear(hidden, output_vocabulary)
        self.dropout = nn.Dropout(dropout)

    def encode(self, tokens: Tensor, embedding: nn.Embedding, encoder: nn.LSTM) -> tuple[Tensor, Tensor]:
        """Per-position states ``(n, T, hidden)`` and a summary ``(n, hidden)``: the two directions summed,
        the summary from the last layer's final states."""
        lengths = (tokens != PAD).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.dropout(embedding(tokens)), lengths, batch_first=True, enforce_sorted=False
        )
        states, (final, _) = encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=tokens.shape[1])
        forward, backward = states.chunk(2, dim=-1)
        return forward + backward, final[-2] + final[-1]

    def context(
        self, study_inputs: Tensor | None, study_outputs: Tensor | None, queries: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The queries' states after reading the memory of study examples, ``(n, T, hidden)``, and their mask.

        Without study examples (``None``) nothing is retrieved: the network is a standard attention seq2seq
        model, the paper's baseline."""
        states, _ = self.encode(queries, self.input_embedding, self.input_encoder)
        if study_inputs is None or study_outputs is None:
            retrieved = torch.zeros_like(states)
        else:
            _, keys = self.encode(study_inputs, self.input_embedding, self.input_encoder)
            _, values = self.encode(study_outputs, self.output_embedding, self.output_encoder)
            scale = states.shape[-1] ** -0.5
            retrieved = torch.softmax(scale * states @ keys.T, dim=-1) @ values  # (n, T, study) @ (study, hidden)
        combined = torch.tanh(self.combine(torch.cat([states, retrieved], dim=-1)))
        return combined, queries != PAD

    def attend(self, outputs: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        """Logits for decoder outputs ``(n, L, hidden)`` after Luong attention over the query's states."""
        scores = outputs @ memory.transpose(1, 2) * memory.shape[-1] ** -0.5  # (n, L, T)
        read = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1) @ memory
        attended = torch.tanh(self.attended(torch.cat([outputs, read], dim=-1)))
        return self.readout(attended)

    def start(self, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The decoder's first state: every layer's hidden state and cell are the query's last combined state
        (as the authors' code)."""
        last = memory[torch.arange(memory.shape[0]), mask.sum(1).clamp_min(1) - 1]
        hidden = last.unsqueeze(0).repeat(self.decoder.num_layers, 1, 1).contiguous()
        return hidden, hidden

    def decode_step(
        self, token: Tensor, state: tuple[Tensor, Tensor], memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One decoder step from the previous tokens ``(n,)``: logits ``(n, vocabulary)`` and the new LSTM state."""
        output, state = self.decoder(self.dropout(self.output_embedding(token)).unsqueeze(1), state)
        return self.attend(output, memory, mask).squeeze(1), state

    def forward(
        self, study_inputs: Tensor | None, study_outputs: Tensor | None, queries: Tensor, targets: Tensor
    ) -> Tensor:
        """Logits ``(n, L, output vocabulary)`` for ``targets`` (ids ending in ``<eos>``) under teacher forcing.

        The decoder has no input feeding (as in the paper), so one LSTM call runs over the whole target."""
        memory, mask = self.context(study_inputs, study_outputs, queries)
        previous = torch.cat([torch.full_like(targets[:, :1], SOS), targets[:, :-1]], dim=1)
        outputs, _ = self.decoder(self.dropout(self.output_embedding(previous)), self.start(memory, mask))
        return self.attend(outputs, memory, mask)

    def loss(
        self, study_inputs: Tensor | None, study_outputs: Tensor | None, queries: Tensor, targets: Tensor
    ) -> Tensor:
        logits = self(study_inputs, study_outputs, queries, targets)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)

    @torch.no_grad()
    def greedy(
        self, study_inputs: Tensor | None, study_outputs: Tensor | None, queries: Tensor, max_length: int
    ) -> Tensor:
        """Greedy decoding, ``(n, <= max_length)`` ids; a row stops at ``<eos>`` (rows that never emit it are cut)."""
        memory, mask = self.context(study_inputs, study_outputs, queries)
        state = self.start(memory, mask)
        token = torch.full((queries.shape[0],), SOS, dtype=torch.long)
        done = torch.zeros(queries.shape[0], dtype=torch.bool)
        out = []
        for _ in range(max_length):
            step_logits, state = self.decode_step(token, state, memory, mask)
            token = step_logits.argmax(-1).masked_fill(done, PAD)
            out.append(token)
            done |= token == EOS
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)
