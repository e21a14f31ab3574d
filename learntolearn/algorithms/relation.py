"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018).

An embedding module maps images to feature maps; a class's feature map is the sum over its
support examples (Section 3.3). Each query's feature map is concatenated with each class's along
the channels, and a learned relation module scores the pair in [0, 1] (Eq. 1). Training regresses
the scores onto one-hot targets with mean squared error (Eq. 2); ``query_loss`` is therefore MSE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, EmbeddingAlgorithm, ModelSetting
from learntolearn.errors import ConfigError, TaskError
from learntolearn.nn.backbones import conv_block


class RelationModule(nn.Module):
    """Two conv blocks over the concatenated pair, then 2 fully connected layers and a sigmoid."""

    def __init__(self, feature_shape: tuple[int, int, int], hidden: int = 8) -> None:
        super().__init__()
        channels, height, width = feature_shape
        self.convs = nn.Sequential(conv_block(2 * channels, channels), conv_block(channels, channels))
        flat = channels * (height // 4) * (width // 4)
        if flat == 0:
            raise ConfigError(f"feature maps of {height}x{width} are too small for the relation module's two poolings")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, pairs: Tensor) -> Tensor:
        return self.head(self.convs(pairs)).squeeze(-1)


@ALGORITHMS.register("relation")
class RelationNetworks(EmbeddingAlgorithm):
    """Relation Networks over any backbone that returns feature maps ``(batch, C, H, W)``."""

    needs_feature_maps = True

    def __init__(self, backbone: nn.Module, feature_shape: tuple[int, ...]) -> None:
        super().__init__()
        if len(feature_shape) != 3:
            raise ConfigError(
                f"Relation Networks need a backbone that returns feature maps (C, H, W), got shape "
                f"{tuple(feature_shape)}; use the 'conv4-maps' backbone"
            )
        self.backbone = backbone
        channels, height, width = feature_shape
        self.relation = RelationModule((channels, height, width))

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> RelationNetworks:
        return cls(backbone, setting.output_shape)

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        if z.dim() != 4:
            raise TaskError(
                f"Relation Networks need a backbone that returns feature maps (batch, C, H, W), got "
                f"{tuple(z.shape)}; use the 'conv4-maps' backbone"
            )
        return z

    def compare(self, support: Tensor, support_y: Tensor, ways: int, query: Tensor) -> Tensor:
        classes = torch.zeros(ways, *support.shape[1:], dtype=support.dtype, device=support.device)
        classes.index_add_(0, support_y, support)
        n = query.shape[0]
        pairs = torch.cat(
            [classes.unsqueeze(0).expand(n, -1, -1, -1, -1), query.unsqueeze(1).expand(-1, ways, -1, -1, -1)], dim=2
        )
        return self.relation(pairs.flatten(0, 1)).view(n, ways)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Relation scores are per-pair similarities in [0, 1]; normalised over the classes."""
        return outputs / outputs.sum(-1, keepdim=True).clamp_min(1e-12)

    def query_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(outputs, F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype))
