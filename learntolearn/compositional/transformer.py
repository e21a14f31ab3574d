"""An encoder-decoder transformer (Vaswani et al., NeurIPS 2017) for sequence-to-sequence tasks.

The standard seq2seq baseline on SCAN and the network MLC meta-trains (Lake & Baroni, Nature 2023,
"Human-like systematic generalization through a meta-learning neural network"), where the study
examples are written into the source sequence. Pre-layer-norm blocks, GELU, sinusoidal positions.
Greedy decoding keeps each decoder layer's keys and values (a KV cache: the source's once, the output
prefix's written one position a step into buffers allocated once for the longest output), so a step
costs one position instead of the whole prefix;
``cache=False`` recomputes the prefix every step and gives the same tokens. Token ids as in
:mod:`learntolearn.compositional.meta_seq2seq`: 0 pads, 1 starts and 2 ends a sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.compositional.meta_seq2seq import EOS, PAD, SOS


def sinusoids(length: int, width: int) -> Tensor:
    """Vaswani et al.'s positional encodings, ``(length, width)``."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
    return table


@dataclass
class KVCache:
    """One decoder layer's self-attention keys and values of the output prefix, in buffers allocated at the
    first step for ``capacity`` positions (no concatenation per step)."""

    capacity: int
    keys: Tensor | None = None
    values: Tensor | None = None
    length: int = 0

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``(n, heads, new, d)`` keys and values; the whole prefix's so far."""
        if self.keys is None or self.values is None:
            shape = (*keys.shape[:2], self.capacity, keys.shape[3])
            self.keys, self.values = keys.new_empty(shape), values.new_empty(shape)
        end = self.length + keys.shape[2]
        if end > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions; position {end} was decoded")
        self.keys[:, :, self.length : end], self.values[:, :, self.length : end] = keys, values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class DecoderLayer(nn.Module):
    """Causal self-attention, attention to the source, feed-forward; each pre-normed and residual."""

    def __init__(
        self, width: int, heads: int, feedforward: int, dropout: float, attention_dropout: float | None = None
    ) -> None:
        super().__init__()
        self.heads, self.dropout_p = heads, dropout if attention_dropout is None else attention_dropout
        self.self_norm, self.cross_norm, self.feedforward_norm = (nn.LayerNorm(width) for _ in range(3))
        self.self_qkv, self.self_out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.cross_q, self.cross_kv, self.cross_out = (
            nn.Linear(width, width),
            nn.Linear(width, 2 * width),
            nn.Linear(width, width),
        )
        self.feedforward = nn.Sequential(
            nn.Linear(width, feedforward), nn.GELU(), nn.Dropout(dropout), nn.Linear(feedforward, width)
        )
        self.dropout = nn.Dropout(dropout)

    def split(self, x: Tensor) -> Tensor:
        """``(n, L, width)`` -> ``(n, heads, L, width / heads)``."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def merge(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2).flatten(2)

    def source_keys(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """This layer's keys and values of the encoded source, computed once per sequence."""
        keys, values = self.cross_kv(memory).chunk(2, dim=-1)
        return self.split(keys), self.split(values)

    def forward(
        self, x: Tensor, source: tuple[Tensor, Tensor], source_mask: Tensor, cache: KVCache | None = None
    ) -> Tensor:
        """``x`` ``(n, L, width)``: the whole prefix (causal), or with ``cache`` only the new positions."""
        dropout = self.dropout_p if self.training else 0.0
        q, k, v = (self.split(t) for t in self.self_qkv(self.self_norm(x)).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.extend(k, v)
        causal = q.shape[2] > 1  # one new position attends to the whole cached prefix
        if causal and k.shape[2] != q.shape[2]:
            raise ValueError("with a cache, decode one position at a time")
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal)
        x = x + self.dropout(self.self_out(self.merge(attended)))
        q = self.split(self.cross_q(self.cross_norm(x)))
        attended = F.scaled_dot_product_attention(
            q, *source, attn_mask=source_mask[:, None, None, :], dropout_p=dropout
        )
        x = x + self.dropout(self.cross_out(self.merge(attended)))
        return x + self.dropout(self.feedforward(self.feedforward_norm(x)))


class TransformerSeq2Seq(nn.Module):
    """A transformer from source ids to target ids; vocabularies of the given sizes, ``width`` units."""

    def __init__(
        self,
        input_vocabulary: int,
        output_vocabulary: int,
        width: int = 128,
        heads: int = 8,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        feedforward: int = 512,
        dropout: float = 0.1,
        max_length: int = 1024,
        attention_dropout: float | None = None,
    ) -> None:
        """``attention_dropout`` (default: ``dropout``) drops attention weights; on CPU a nonzero value sends
        scaled_dot_product_attention down its unfused path."""
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}")
        self.width, self.max_length = width, max_length
        self.source_embedding = nn.Embedding(input_vocabulary, width, padding_idx=PAD)
        self.target_embedding = nn.Embedding(output_vocabulary, width, padding_idx=PAD)
        self.positions: Tensor
        self.register_buffer("positions", sinusoids(max_length, width), persistent=False)
        layer = nn.TransformerEncoderLayer(
            width, heads, feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        if attention_dropout is not None:
            layer.self_attn.dropout = attention_dropout
        self.encoder = nn.TransformerEncoder(
            layer, encoder_layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.decoder = nn.ModuleList(
            [DecoderLayer(width, heads, feedforward, dropout, attention_dropout) for _ in range(decoder_layers)]
        )
        self.layers: list[DecoderLayer] = list(self.decoder)  # type: ignore[arg-type]
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Linear(width, output_vocabulary)
        self.dropout = nn.Dropout(dropout)

    def embed(self, embedding: nn.Embedding, tokens: Tensor, offset: int = 0) -> Tensor:
        if offset + tokens.shape[1] > self.max_length:
            raise ValueError(
                f"sequences of more than {self.max_length} tokens; build the model with a larger max_length"
            )
        # nn.Embedding starts at unit scale, as the positions are (no sqrt(width) factor to drown them)
        return self.dropout(embedding(tokens) + self.positions[offset : offset + tokens.shape[1]])

    def encode(self, sources: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Every decoder layer's keys and values of the sources ``(n, S)``, and the mask of real tokens."""
        mask = sources != PAD
        memory = self.encoder(self.embed(self.source_embedding, sources), src_key_padding_mask=~mask)
        return [layer.source_keys(memory) for layer in self.layers], mask

    def decode(
        self,
        tokens: Tensor,
        source: list[tuple[Tensor, Tensor]],
        mask: Tensor,
        caches: list[KVCache] | None = None,
        offset: int = 0,
    ) -> Tensor:
        x = self.embed(self.target_embedding, tokens, offset)
        for index, (layer, keys) in enumerate(zip(self.layers, source)):
            x = layer(x, keys, mask, None if caches is None else caches[index])
        return self.readout(self.norm(x))

    def forward(self, sources: Tensor, targets: Tensor) -> Tensor:
        """Logits ``(n, L, output vocabulary)`` for ``targets`` (ids ending in ``<eos>``) under teacher forcing."""
        source, mask = self.encode(sources)
        previous = torch.cat([torch.full_like(targets[:, :1], SOS), targets[:, :-1]], dim=1)
        return self.decode(previous, source, mask)

    def loss(self, sources: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(self(sources, targets).flatten(0, 1), targets.flatten(), ignore_index=PAD)

    @torch.no_grad()
    def greedy(self, sources: Tensor, max_length: int, cache: bool = True) -> Tensor:
        """Greedy decoding, ``(n, <= max_length)`` ids; a row stops at ``<eos>`` (rows that never emit it are cut)."""
        source, mask = self.encode(sources)
        tokens = torch.full((sources.shape[0], 1), SOS, dtype=torch.long, device=sources.device)
        caches = [KVCache(max_length) for _ in self.decoder] if cache else None
        done = torch.zeros(sources.shape[0], dtype=torch.bool, device=sources.device)
        for step in range(max_length):
            if caches is not None:
                logits = self.decode(tokens[:, -1:], source, mask, caches, offset=step)[:, -1]
            else:
                logits = self.decode(tokens, source, mask)[:, -1]
            token = logits.argmax(-1).masked_fill(done, PAD)
            tokens = torch.cat([tokens, token.unsqueeze(1)], dim=1)
            done |= token == EOS
            if bool(done.all()):
                break
        return tokens[:, 1:]
