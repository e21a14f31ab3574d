"""MLC: a plain transformer with the study examples in its source learns, in seconds, to answer from them."""

import random

import pytest
import torch
from helpers import COLOUR_PAIRS, COLOUR_WORDS

from learntolearn.compositional.mlc import ARROW, SEPARATOR, MLCCodec, mlc_source
from learntolearn.compositional.transformer import TransformerSeq2Seq
from learntolearn.data.interpretation_grammars import SYMBOLS, WORDS, GrammarEpisodes
from learntolearn.data.scan import PrimitiveRemapEpisodes

MEANINGS, PAIRS = COLOUR_WORDS, COLOUR_PAIRS
STEPS = 1000  # of 16 episodes: reading study examples in context takes a transformer longer than a memory
CODEC = MLCCodec([w for c, _ in PAIRS for w in c], MEANINGS.values())


def accuracy(model, seed):
    episodes = PrimitiveRemapEpisodes(PAIRS, primitives=MEANINGS, queries=12, seed=seed)
    model.eval()
    correct = total = 0
    for _ in range(20):
        episode = episodes.sample()
        sources = CODEC.sources(episode.study, [c for c, _ in episode.queries])
        for row, (_, output) in zip(model.greedy(sources, max_length=6).tolist(), episode.queries):
            correct += CODEC.outputs.decode(row) == output
            total += 1
    return correct / total


@pytest.fixture
def one_thread():
    """Matrices this small run faster on one thread than on two that contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # about a minute of CPU: the transformer learns to look up its source abruptly, late
def test_mlc_answers_new_meanings_from_the_study_examples_in_its_source(one_thread):
    torch.manual_seed(0)
    random.seed(0)
    model = TransformerSeq2Seq(
        len(CODEC.inputs),
        len(CODEC.outputs),
        width=64,
        heads=4,
        encoder_layers=2,
        decoder_layers=2,
        feedforward=128,
        dropout=0.0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = accuracy(model, 99)
    episodes = PrimitiveRemapEpisodes(PAIRS, primitives=MEANINGS, queries=4, seed=0)
    for _ in range(STEPS):
        model.train()
        batch = [(e.study, e.queries) for e in (episodes.sample() for _ in range(16))]
        loss = model.loss(*CODEC.batch(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = accuracy(model, 99)
    assert before < 0.2 and after > 0.95, (before, after)


def test_grammar_episodes_become_mlc_sources():
    episode = GrammarEpisodes(seed=0).sample()
    codec = MLCCodec(WORDS, SYMBOLS)
    query, output = episode.queries[0]
    source = mlc_source(query, episode.study)
    assert source[: len(query)] == query and source.count(SEPARATOR) == source.count(ARROW) == 14
    sources, targets = codec.batch([(episode.study, episode.queries)])
    assert sources.shape[0] == targets.shape[0] == 10
    assert codec.inputs.decode(sources[0].tolist()) == source and codec.outputs.decode(targets[0].tolist()) == output
