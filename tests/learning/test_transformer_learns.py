"""The transformer seq2seq model learns a small transduction in seconds (translate a sequence word by word)."""

import random

import pytest
import torch

from learntolearn.compositional.meta_seq2seq import pad
from learntolearn.compositional.transformer import TransformerSeq2Seq


def batch(rng: random.Random, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources of 1-6 words (ids 3-10); targets: each word id + 5 in the output vocabulary."""
    rows = [[rng.randrange(3, 11) for _ in range(rng.randint(1, 6))] for _ in range(n)]
    return pad(rows), pad([[w + 5 for w in r] + [2] for r in rows])


@pytest.mark.slow  # ~15 s: the default tier stays under five minutes
def test_learns_to_translate_word_by_word():
    torch.manual_seed(0)
    rng = random.Random(0)
    net = TransformerSeq2Seq(
        11, 16, width=64, heads=4, encoder_layers=2, decoder_layers=2, feedforward=128, dropout=0.0
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(300):
        net.train()
        loss = net.loss(*batch(rng, 64))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    sources, targets = batch(random.Random(1), 200)
    decoded = net.greedy(sources, max_length=8)
    right = sum(
        d[: list(t).index(2) + 1] == t[: list(t).index(2) + 1] for d, t in zip(decoded.tolist(), targets.tolist())
    )
    assert right / 200 > 0.95, right
