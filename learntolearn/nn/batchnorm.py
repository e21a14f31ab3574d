"""BatchNorm as MAML uses it: statistics of the current batch only, never running averages.

``use_batch_statistics(model)`` applies ``torch.func.replace_all_batch_norm_modules_``: the layers
keep their fused kernels but drop running statistics. ``decomposed=True`` instead swaps every
BatchNorm layer for :class:`BatchStatisticsNorm`, the same computation written with plain tensor
ops. That form is needed under ``torch.func.vmap`` when the affine parameters differ per task (as
MAML's fast weights do): there, the fused kernel's batching rule gave second-order meta-gradients
that disagree with finite differences (torch 2.13), while the decomposed form agrees (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchStatisticsNorm(nn.Module):
    """Normalise over every dimension but the channel one (dim 1), then scale and shift."""

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def forward(self, x: Tensor) -> Tensor:
        # y = x * scale + shift with per-channel scale = weight / sqrt(var + eps) and shift = bias - mean * scale,
        # the form of PyTorch's own CPU kernel: one full-size op (and its derivatives) instead of four.
        var, mean = torch.var_mean(x, [0, *range(2, x.dim())], unbiased=False, keepdim=True)
        scale = torch.rsqrt(var + self.eps)
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.weight is not None:
            scale = scale * self.weight.view(shape)
        shift = -mean * scale
        if self.bias is not None:
            shift = shift + self.bias.view(shape)
        return torch.addcmul(shift, x, scale)


def use_batch_statistics(model: nn.Module, *, decomposed: bool = False) -> nn.Module:
    """Make every BatchNorm layer of ``model`` (in place) normalise with the current batch's statistics."""
    if not decomposed:
        return torch.func.replace_all_batch_norm_modules_(model)
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, BatchStatisticsNorm(child))
        else:
            use_batch_statistics(child, decomposed=True)
    return model
