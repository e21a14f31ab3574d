"""How far one training step of BatchNorm, 2x2 max-pooling and ReLU lands from float64, fused and not.

    python benchmarks/norm_pool_precision.py

A conv4 first block's output size (600 x 64 x 28 x 28: a 60-way 5-shot 5-query ProtoNets episode) of
normal noise, BatchNorm weights and biases drawn normal, a normal upstream gradient: the same step in
float64 through PyTorch's operators is the reference, and PyTorch's operators in float32 (channels-last,
as our backbones run, and NCHW) and the fused operator (``learntolearn.nn.norm_pool``) are compared with
it: the largest absolute difference over the largest reference value, per output.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from record import append
from torch import nn

from learntolearn.nn.norm_pool import kernels, norm_pool_relu

SHAPE = (600, 64, 28, 28)


def step(fn, x0: torch.Tensor, norm: nn.BatchNorm2d, grad: torch.Tensor, dtype, layout) -> dict[str, torch.Tensor]:
    norm = copy.deepcopy(norm).to(dtype)
    x = x0.to(dtype).clone(memory_format=layout).requires_grad_()
    out = fn(x, norm)
    out.backward(grad.to(dtype).contiguous(memory_format=layout))
    outputs = {"output": out, "input gradient": x.grad, "weight gradient": norm.weight.grad}
    return {name: t.detach().double() for name, t in outputs.items()}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x0, grad = torch.randn(SHAPE), torch.randn(SHAPE[0], SHAPE[1], SHAPE[2] // 2, SHAPE[3] // 2)
    norm = nn.BatchNorm2d(SHAPE[1])
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()

    def pytorch(x, n):
        return F.relu(F.max_pool2d(n(x), 2))

    reference = step(pytorch, x0, norm, grad, torch.float64, torch.contiguous_format)
    variants = {
        "PyTorch, float32, channels-last": (pytorch, torch.channels_last),
        "PyTorch, float32, NCHW": (pytorch, torch.contiguous_format),
    }
    if kernels() is not None:
        variants["fused, float32, channels-last"] = (norm_pool_relu, torch.channels_last)
    errors = {}
    for name, (fn, layout) in variants.items():
        got = step(fn, x0, norm, grad, torch.float32, layout)
        errors[name] = {
            k: float(f"{float((got[k] - want).abs().max() / want.abs().max()):.2e}") for k, want in reference.items()
        }
    append(
        "norm_pool_precision",
        {
            "setting": f"BatchNorm + 2x2 max-pool + ReLU, training step, {'x'.join(map(str, SHAPE))}",
            "relative_error": errors,
        },
    )


if __name__ == "__main__":
    main()
