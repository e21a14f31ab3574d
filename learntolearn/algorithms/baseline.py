"""Baseline, Baseline++ and fine-tuning (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot
Classification", ICLR 2019).

Training is ordinary supervised classification over all meta-train classes: every image of an
episode is labelled with its class index in the training split (``Task.class_ids``), so the
episodic sampler only serves as a class-balanced mini-batch source. At test time the training
head is discarded and a new head is fitted on the support features with the backbone frozen
(Section 3.1): a linear layer (``baseline``) or a cosine-similarity classifier with a fixed scale
(``baseline++``, Section 3.2); ``finetune`` also updates the backbone on the support set.
The fit uses SGD with momentum 0.9 and lr 0.01 for 100 steps, as in the paper, on the whole
support set each step (the paper uses mini-batches of 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    AlgorithmConfig,
    MetaLoss,
    ModelSetting,
    accuracy,
    check_query,
    check_support,
)
from learntolearn.errors import ConfigError
from learntolearn.settings import setting
from learntolearn.types import Task


class CosineClassifier(nn.Module):
    """Logits ``scale * cos(features, w_c)`` for each class weight ``w_c`` (Baseline++)."""

    def __init__(self, dim: int, classes: int, scale: float = 10.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        self.scale = scale

    def forward(self, features: Tensor) -> Tensor:
        return self.scale * F.normalize(features, dim=-1) @ F.normalize(self.weight, dim=-1).T


@dataclass(frozen=True)
class BaselineConfig(AlgorithmConfig):
    """Settings of the baselines that fit a new head per task."""

    section = "baseline"

    adapt_steps: int = setting(
        100, "SGD steps fitting the new head (and the backbone, for finetune) per task.", minimum=1
    )


class Baseline(Algorithm):
    """Supervised pre-training, then a new head (and optionally the backbone) fitted per task."""

    Config = BaselineConfig
    adapts_by_gradient = True
    cosine: bool = False
    tune_backbone: bool = False

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        train_classes: int,
        *,
        adapt_steps: int = 100,
        adapt_lr: float = 0.01,
    ) -> None:
        super().__init__()
        self.backbone, self.embedding_dim = backbone, embedding_dim
        self.classifier = self.new_head(train_classes)
        self.adapt_steps, self.adapt_lr = adapt_steps, adapt_lr

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> Baseline:
        if len(setting.output_shape) != 1:
            raise ConfigError(f"{cls.__name__} needs flat embeddings, got output shape {setting.output_shape}")
        return cls(backbone, setting.output_shape[0], setting.train_classes, **config.to_dict())

    def new_head(self, classes: int, generator: torch.Generator | None = None) -> nn.Module:
        """A freshly initialised head, uniform in +-1/sqrt(dim) like ``nn.Linear``; drawn from
        ``generator`` when given, so that test-time fits do not depend on the global RNG."""
        head = CosineClassifier(self.embedding_dim, classes) if self.cosine else nn.Linear(self.embedding_dim, classes)
        bound = self.embedding_dim**-0.5
        with torch.no_grad():
            for p in head.parameters():
                p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
        return head

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        for task in tasks:
            check_query(task.support_x, task.query_x)
        x = torch.cat([x for t in tasks for x in (t.support_x, t.query_x)])
        y = torch.cat([t.class_ids[labels] for t in tasks for labels in (t.support_y, t.query_y)])
        logits = self.classifier(self.backbone(x))
        return MetaLoss(F.cross_entropy(logits, y), accuracy(logits.detach(), y))

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[nn.Module, dict[str, Tensor] | None]:
        ways = check_support(support_x, support_y)
        head = self.new_head(ways, torch.Generator().manual_seed(0)).to(support_x.device)
        backbone = (
            {n: p.detach().clone().requires_grad_() for n, p in self.backbone.named_parameters()}
            if self.tune_backbone
            else None
        )
        with torch.enable_grad():
            features = None if self.tune_backbone else self.backbone(support_x).detach()
            parameters = list(head.parameters()) + (list(backbone.values()) if backbone else [])
            optimizer = torch.optim.SGD(parameters, lr=self.adapt_lr, momentum=0.9)
            for _ in range(self.adapt_steps):
                current = features if features is not None else self.features(backbone, support_x)
                loss = F.cross_entropy(head(current), support_y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return head, backbone

    def embed(self, x: Tensor) -> Tensor:
        """The pre-trained backbone's features."""
        return self.backbone(x)

    def features(self, backbone: dict[str, Tensor] | None, x: Tensor) -> Tensor:
        return self.backbone(x) if backbone is None else torch.func.functional_call(self.backbone, backbone, (x,))

    def predict(self, adapted: tuple[nn.Module, dict[str, Tensor] | None], query_x: Tensor) -> Tensor:
        head, backbone = adapted
        return head(self.features(backbone, query_x))


@ALGORITHMS.register("baseline")
class LinearBaseline(Baseline):
    """Baseline: a new linear head on frozen features."""


@ALGORITHMS.register("baseline++")
class CosineBaseline(Baseline):
    """Baseline++: a new cosine-similarity head on frozen features (trained with one, too)."""

    cosine = True


@ALGORITHMS.register("finetune")
class FineTuning(Baseline):
    """Fine-tuning: a new linear head and the whole backbone updated on the support set."""

    tune_backbone = True
