"""ANIL, "Almost No Inner Loop" (Raghu, Raghu, Bengio & Vinyals, ICLR 2020).

MAML whose inner loop adapts only the final layer (the head); the body is meta-learned in the
outer loop alone (Section 4). Since the body is fixed within a task, its features of the support
and query sets are computed once per task and the inner steps run on the head only, which is what
makes ANIL several times cheaper than MAML. The meta-gradient still flows into the body through
the features, to second order unless ``first_order``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig, ModelSetting
from learntolearn.algorithms.inner import Params, sgd_inner_loop
from learntolearn.algorithms.maml import MAML, GradientConfig
from learntolearn.nn.heads import linear_head


@ALGORITHMS.register("anil")
class ANIL(MAML):
    """ANIL over a ``body`` (feature extractor) and a ``head`` (e.g. ``nn.Linear(dim, ways)``)."""

    Config = GradientConfig

    def __init__(self, body: nn.Module, head: nn.Module, **options) -> None:
        super().__init__(nn.Sequential(OrderedDict(body=body, head=head)), **options)

    @classmethod
    def from_config(cls, config: AlgorithmConfig, backbone: nn.Module, setting: ModelSetting) -> ANIL:
        return cls(
            backbone,
            nn.Sequential(*linear_head(setting.output_shape, setting.ways)),
            bfloat16_queries=setting.precision == "bfloat16",
            loss="mse" if setting.regression else "cross_entropy",
            **config.to_dict(),
        )

    @property
    def body(self) -> nn.Module:
        return self.model.get_submodule("body")

    @property
    def head(self) -> nn.Module:
        return self.model.get_submodule("head")

    def adapted_names(self) -> list[str]:
        return [f"head.{name}" for name, _ in self.head.named_parameters()]

    def fast_weights(
        self, support_x: Tensor, support_y: Tensor, ways: int | None, *, check_finite: bool = True
    ) -> Params:
        features = self.body(support_x)
        head: Params = dict(self.head.named_parameters())
        return sgd_inner_loop(
            lambda p: self.checked_loss(torch.func.functional_call(self.head, p, (features,)), support_y, ways),
            head,
            self.inner_steps_now(),
            self.inner_rates(),
            first_order=self.first_order or not self.training,
            check_finite=check_finite,
        )

    def predict(self, adapted: Params, query_x: Tensor) -> Tensor:
        return self.in_query_precision(
            lambda: torch.func.functional_call(self.head, adapted, (self.body(query_x),)), query_x
        )
