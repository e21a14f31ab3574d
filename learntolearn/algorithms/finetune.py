"""Test-time fine-tuning of a backbone on each task's support set: the last stage of P>M>F
(Hu, Li, Stühmer, Kim & Hospedales, CVPR 2022, "Pushing the Limits of Simple Pipelines for Few-Shot
Learning", Section 3.3).

Per task, a copy of the backbone's trainable part takes ``steps`` gradient steps on a ProtoNet loss in
which the support images are the prototypes and random views of them (crops and flips) the queries;
queries are then classified by cosine similarity to the fine-tuned prototypes. With a
:class:`~learntolearn.nn.efficientnet.PretrainedBackbone` only its trainable last blocks change, and
the frozen part's outputs are computed once per image and view; any other backbone is tuned whole.
Nothing is meta-trained here: it adapts whatever backbone it is given (pretrained, or meta-trained
with ProtoNets, which is P>M>F's middle stage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from learntolearn.algorithms.base import Algorithm, MetaLoss, check_query, check_support
from learntolearn.data.augment import random_resized_crops
from learntolearn.nn.distances import cosine_similarity, prototypes
from learntolearn.nn.efficientnet import PretrainedBackbone
from learntolearn.types import Task

Parameters = dict[str, Tensor]


class SupportFineTuning(Algorithm):
    """Fine-tunes ``backbone`` on each support set (views as queries), then nearest cosine prototype.

    ``steps`` Adam steps of learning rate ``lr``; each step uses one of ``views`` random views of every
    support image, drawn once per task; ``temperature`` scales the cosine logits of the loss. BatchNorm
    keeps its statistics (eval mode): a support set is too small to estimate them.
    """

    adapts_by_gradient = True

    def __init__(
        self,
        backbone: nn.Module,
        *,
        steps: int = 20,
        lr: float = 1e-4,
        views: int = 2,
        temperature: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.backbone, self.steps, self.lr, self.views, self.temperature = backbone, steps, lr, views, temperature
        self.views_generator = torch.Generator().manual_seed(seed)
        if isinstance(backbone, PretrainedBackbone):
            self.frozen: Callable[..., Tensor] = backbone.frozen
            self.trainable: nn.Module = backbone.trainable
        else:
            self.frozen, self.trainable = lambda images, cache=True: images, backbone

    def embed(self, x: Tensor) -> Tensor:
        """The backbone's features before any fine-tuning."""
        return self.backbone(x).flatten(1)

    def features(self, parameters: Parameters, maps: Tensor) -> Tensor:
        return functional_call(self.trainable, parameters, (maps,)).flatten(1)

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[Parameters, Tensor]:
        ways = check_support(support_x, support_y)
        was_training = self.trainable.training
        self.trainable.eval()
        parameters = {name: p.detach().clone().requires_grad_(True) for name, p in self.trainable.named_parameters()}
        with torch.no_grad():
            support_maps = self.frozen(support_x)
            views = [
                self.frozen(random_resized_crops(support_x.float(), self.views_generator), cache=False)
                for _ in range(min(self.views, self.steps))
            ]
        optimizer = torch.optim.Adam(parameters.values(), lr=self.lr)
        with torch.enable_grad():
            for step in range(self.steps):
                centres = prototypes(self.features(parameters, support_maps), support_y, ways)
                logits = self.temperature * cosine_similarity(
                    self.features(parameters, views[step % len(views)]), centres
                )
                optimizer.zero_grad()
                F.cross_entropy(logits, support_y).backward()
                optimizer.step()
        self.trainable.train(was_training)
        tuned = {name: p.detach() for name, p in parameters.items()}
        with torch.no_grad():
            return tuned, prototypes(self.features(tuned, support_maps), support_y, ways)

    def predict(self, adapted: tuple[Parameters, Tensor], query_x: Tensor) -> Tensor:
        parameters, centres = adapted
        was_training = self.trainable.training
        self.trainable.eval()
        similarity = cosine_similarity(self.features(parameters, self.frozen(query_x)), centres)
        self.trainable.train(was_training)
        return self.temperature * similarity

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        for task in tasks:
            check_query(task.support_x, task.query_x)
        raise NotImplementedError(
            "test-time fine-tuning adapts a trained backbone per task and meta-trains nothing; meta-train the "
            "backbone with protonet, then evaluate with this"
        )
