"""Meta seq2seq learns, in seconds, to read what words mean off each episode's study examples."""

import random

import torch
from helpers import COLOUR_PAIRS, COLOUR_WORDS

from learntolearn.compositional.meta_seq2seq import EOS, MetaSeq2Seq, pad
from learntolearn.data.scan import PrimitiveRemapEpisodes, Vocabulary

WORDS, PAIRS = COLOUR_WORDS, COLOUR_PAIRS
INPUTS = Vocabulary.build(command for command, _ in PAIRS)
OUTPUTS = Vocabulary.build(output for _, output in PAIRS)


def tensors(pairs):
    return pad([INPUTS.encode(c, eos=False) for c, _ in pairs]), pad([OUTPUTS.encode(o) for _, o in pairs])


def accuracy(model, episodes, count, memory=True):
    model.eval()
    correct = total = 0
    for _ in range(count):
        episode = episodes.sample()
        study_in, study_out = tensors(episode.study) if memory else (None, None)
        queries, _ = tensors(episode.queries)
        decoded = model.greedy(study_in, study_out, queries, max_length=6)
        for row, (_, output) in zip(decoded.tolist(), episode.queries):
            correct += OUTPUTS.decode(row) == output
            total += 1
    return correct / total


def meta_train(memory: bool) -> tuple[float, float]:
    """Accuracy on held-out episodes before and after 400 training episodes, with or without the memory."""
    torch.manual_seed(0)
    random.seed(0)
    episodes = PrimitiveRemapEpisodes(PAIRS, primitives=WORDS, queries=12, seed=0)
    model = MetaSeq2Seq(len(INPUTS), len(OUTPUTS), hidden=64, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = accuracy(model, PrimitiveRemapEpisodes(PAIRS, primitives=WORDS, queries=12, seed=99), 20, memory)
    for _ in range(400):
        model.train()
        episode = episodes.sample()
        study = tensors(episode.study) if memory else (None, None)
        loss = model.loss(*study, *tensors(episode.queries))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, accuracy(model, PrimitiveRemapEpisodes(PAIRS, primitives=WORDS, queries=12, seed=99), 20, memory)


def test_meta_seq2seq_answers_new_meanings_from_the_study_examples():
    before, after = meta_train(memory=True)
    assert before < 0.2 and after > 0.95, (before, after)


def test_without_its_memory_the_same_network_cannot():
    _, after = meta_train(memory=False)
    assert after < 0.5, f"a standard seq2seq network guessed the episode's meanings: {after}"


def test_greedy_decoding_stops_at_eos_and_the_loss_ignores_padding():
    model = MetaSeq2Seq(len(INPUTS), len(OUTPUTS), hidden=8, dropout=0.0)
    study_in, study_out = tensors(PAIRS[:4])
    queries, targets = tensors(PAIRS[4:7])
    decoded = model.greedy(study_in, study_out, queries, max_length=5)
    assert decoded.shape[0] == 3 and decoded.shape[1] <= 5
    for row in decoded.tolist():
        if EOS in row:
            assert all(t == 0 for t in row[row.index(EOS) + 1 :]), "nothing but padding after <eos>"
    longer = torch.cat([targets, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(
        model.loss(study_in, study_out, queries, longer), model.loss(study_in, study_out, queries, targets)
    )
