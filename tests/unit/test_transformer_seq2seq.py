"""The transformer seq2seq model: KV-cached greedy decoding equals recomputing the prefix, padding is inert."""

import pytest
import torch

from learntolearn.compositional.meta_seq2seq import EOS, PAD
from learntolearn.compositional.transformer import KVCache, TransformerSeq2Seq


def model(seed: int = 0, **kwargs) -> TransformerSeq2Seq:
    """A network briefly trained to copy sources (ids 3-8) into targets, so rows end at different steps."""
    torch.manual_seed(seed)
    net = TransformerSeq2Seq(12, 9, width=32, heads=4, encoder_layers=2, decoder_layers=2, feedforward=64, **kwargs)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for step in range(60):
        batch = sources(32, seed=100 + step).clamp_max(8)
        loss = net.loss(
            batch,
            torch.cat([batch, torch.zeros_like(batch[:, :1])], dim=1).scatter(
                1, (batch != PAD).sum(1, keepdim=True), EOS
            ),
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def sources(n: int = 16, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (n,), generator=generator)
    out = torch.zeros(n, 8, dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        out[row, :length] = torch.randint(3, 12, (length,), generator=generator)
    return out


def test_cached_greedy_decoding_gives_the_tokens_of_recomputing_the_prefix():
    for seed in range(3):
        net, batch = model(seed), sources(seed=seed)
        cached, recomputed = net.greedy(batch, max_length=20), net.greedy(batch, max_length=20, cache=False)
        ends = {row.index(EOS) if EOS in row else None for row in cached.tolist()}
        assert len(ends) > 2, "rows end at different steps (or not at all), so the test covers finished rows"
        assert torch.equal(cached, recomputed)


def test_each_cached_step_has_the_teacher_forced_logits():
    net, batch = model(), sources()
    decoded = net.greedy(batch, max_length=10)
    full = net(batch, decoded)  # logits of every step given the decoded prefix
    source, mask = net.encode(batch)
    caches = [KVCache(decoded.shape[1]) for _ in net.decoder]
    previous = torch.cat([torch.ones_like(decoded[:, :1]), decoded[:, :-1]], dim=1)
    for step in range(decoded.shape[1]):
        step_logits = net.decode(previous[:, step : step + 1], source, mask, caches, offset=step)[:, 0]
        torch.testing.assert_close(step_logits, full[:, step], atol=1e-5, rtol=1e-5)


def test_padding_changes_nothing_and_rows_stop_at_eos():
    net, batch = model(), sources()
    padded = torch.cat([batch, torch.full((batch.shape[0], 5), PAD)], dim=1)
    targets = batch[:, :4] % 9
    torch.testing.assert_close(net(batch, targets), net(padded, targets))
    for row in net.greedy(batch, max_length=20).tolist():
        if EOS in row:
            assert set(row[row.index(EOS) + 1 :]) <= {PAD}


def test_sequences_longer_than_the_positions_are_refused_with_the_fix():
    net = TransformerSeq2Seq(12, 9, width=32, heads=4, max_length=8)
    with pytest.raises(ValueError, match="larger max_length"):
        net(torch.ones(1, 9, dtype=torch.long) + 2, torch.ones(1, 2, dtype=torch.long))


def test_the_cache_refuses_more_positions_than_it_was_built_for():
    cache = KVCache(capacity=2)
    for _ in range(2):
        keys, _ = cache.extend(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
    assert keys.shape == (1, 2, 2, 4)
    with pytest.raises(ValueError, match="holds 2 positions; position 3"):
        cache.extend(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))


def test_attention_dropout_is_its_own_setting_and_defaults_to_dropout():
    """Without attention dropout a training-mode pass is random only through the residual dropout: with that
    off as well it is deterministic, while the default network (attention dropout = dropout) is not."""
    x, y = sources(4).clamp_max(8), sources(4, seed=2).clamp_max(8)
    torch.manual_seed(0)
    net = TransformerSeq2Seq(12, 9, width=32, heads=4, encoder_layers=1, decoder_layers=1, feedforward=64)
    assert net.decoder[0].dropout_p == 0.1 and net.encoder.layers[0].self_attn.dropout == 0.1
    torch.manual_seed(0)
    free = TransformerSeq2Seq(
        12, 9, width=32, heads=4, encoder_layers=1, decoder_layers=1, feedforward=64, attention_dropout=0.0
    )
    assert free.decoder[0].dropout_p == 0.0 and free.encoder.layers[0].self_attn.dropout == 0.0
    assert free.decoder[0].dropout.p == 0.1, "the residual dropout keeps its rate"
    for module in (net, free):
        for layer in module.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.p = 0.0
    net.train(), free.train()
    assert torch.equal(free.loss(x, y), free.loss(x, y))
    assert not torch.equal(net.loss(x, y), net.loss(x, y)), "attention weights are still dropped by default"
