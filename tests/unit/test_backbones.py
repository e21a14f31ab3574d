"""The registered backbones compute exactly the papers' networks, whatever layout or layer order speeds them up."""

import itertools

import pytest
import torch
from torch import nn

from learntolearn.nn.backbones import BACKBONES


def papers_order(net: nn.Module) -> nn.Sequential:
    """The same modules (shared parameters) with every ReLU moved back before its max-pooling."""
    flat = [m for m in net.modules() if not isinstance(m, (nn.Sequential,))]
    for i in range(len(flat) - 1):
        if isinstance(flat[i], nn.MaxPool2d) and isinstance(flat[i + 1], nn.ReLU):
            flat[i], flat[i + 1] = flat[i + 1], flat[i]
    return nn.Sequential(*flat)


@pytest.mark.parametrize("name", ["conv4", "conv4-maps"])
def test_relu_after_pooling_gives_the_papers_outputs_and_gradients_exactly(name):
    torch.manual_seed(0)
    ours = BACKBONES.get(name)().double()
    layers = [m for m in ours.modules() if not isinstance(m, nn.Sequential)]
    assert any(isinstance(a, nn.MaxPool2d) and isinstance(b, nn.ReLU) for a, b in itertools.pairwise(layers))
    reference = papers_order(ours)
    x = torch.randn(12, 1, 28, 28, dtype=torch.float64)
    out, expected = ours(x), reference(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(out.pow(2).sum(), list(ours.parameters()))
    # the reference shares the parameters, so compute its gradients afresh
    expected_grads = torch.autograd.grad(expected.pow(2).sum(), list(ours.parameters()))
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_old_checkpoints_load_into_the_reordered_blocks():
    keys = set(BACKBONES.get("conv4")().state_dict())
    assert {"0.0.weight", "0.1.weight", "0.1.running_mean", "3.1.bias"} <= keys
    assert not any(k.startswith(("0.2.", "0.3.")) for k in keys), "the swapped ReLU/pool slots hold no state"


def test_a_conv4_saved_with_convolution_biases_loads_to_the_same_outputs():
    """Our conv blocks drop the bias BatchNorm cancels; a state dict that has one folds it into running_mean."""
    torch.manual_seed(0)
    biased = BACKBONES.get("conv4")().double()
    x = torch.randn(16, 1, 28, 28, dtype=torch.float64)
    biased(x)  # running statistics to fold into
    g = torch.Generator().manual_seed(1)
    for block in list(biased)[:4]:
        conv = block[0]
        block[0] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1).double()
        with torch.no_grad():
            block[0].weight.copy_(conv.weight)
            block[0].bias.copy_(torch.randn(conv.out_channels, generator=g, dtype=torch.float64))
            block[1].running_mean += block[0].bias  # what the biased network would have tracked
    saved = biased.state_dict()
    assert "0.0.bias" in saved
    ours = BACKBONES.get("conv4")().double()
    ours.load_state_dict(saved)
    assert not any(isinstance(m, nn.Conv2d) and m.bias is not None for m in ours.modules())
    for train in (True, False):
        biased.train(train), ours.train(train)
        torch.testing.assert_close(ours(x), biased(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["conv4", "conv4-strided", "conv4-maps"])
def test_fast_weights_with_nchw_strides_still_run_channels_last(name):
    """An inner-loop weight ``p - lr * g`` of the one-channel first convolution has NCHW strides; the
    network must still run channels-last after it (NCHW max-pooling is several times slower)."""
    net = BACKBONES.get(name)()
    layouts = []
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.register_forward_hook(
                lambda m, inputs, out: layouts.append(
                    out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
                )
            )
    params = {n: p.detach().clone(memory_format=torch.contiguous_format) for n, p in net.named_parameters()}
    assert params["0.0.weight" if name == "conv4" else "0.weight"].stride() == (9, 9, 3, 1)
    x = torch.rand(6, 1, 28, 28)
    out = torch.func.functional_call(net, params, (x,))
    assert layouts and all(layouts), layouts
    net.use_contiguous_layout()
    torch.testing.assert_close(out, torch.func.functional_call(net, params, (x,)), rtol=1e-5, atol=1e-5)


def test_bfloat16_backbones_return_float32_close_to_float32_and_train():
    torch.manual_seed(0)
    net = BACKBONES.get("conv4")()
    x = torch.rand(20, 1, 28, 28)
    exact = net(x)
    net.use_bfloat16()
    mixed = net(x)
    assert mixed.dtype == torch.float32 and net[0][0].weight.dtype == torch.float32
    assert (mixed - exact).abs().max() < 0.05 * exact.abs().max()
    mixed.pow(2).sum().backward()
    assert net[0][0].weight.grad.dtype == torch.float32 and torch.isfinite(net[0][0].weight.grad).all()


def test_bfloat16_is_refused_where_it_is_not_checked():
    from learntolearn.engine.config import TrainConfig

    with pytest.raises(ValueError, match="precision bfloat16 is not supported by reptile"):
        TrainConfig.create(algorithm="reptile", precision="bfloat16")
    with pytest.raises(ValueError, match="precision bfloat16 is not supported by finetune"):
        TrainConfig.create(algorithm="finetune", precision="bfloat16")
    assert TrainConfig.create(algorithm="maml", precision="bfloat16").run.precision == "bfloat16"
    with pytest.raises(ValueError, match="run key 'precision': unknown 'float16'"):
        TrainConfig.create(precision="float16")
