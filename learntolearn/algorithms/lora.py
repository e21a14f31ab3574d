"""LoRA adaptation of a pretrained sentence encoder per task, and a meta-learned LoRA initialisation.

LoRA (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models", Eq. 3) adds ``B A x`` to the
query and value projections of every attention layer, with rank-``r`` matrices ``A`` (random) and ``B``
(zero), so the adapted encoder starts as the pretrained one; the pretrained weights stay frozen and
shared. The LoRA layers are injected by the PEFT library; adaptation is a pure function of a dict of
LoRA tensors (``torch.func.functional_call``), so every task starts from the same initialisation.

Per task, ``steps`` Adam steps on the support set minimise the cross-entropy of scaled cosine
similarities to the support set's own class prototypes (Snell et al. 2017's objective with the
support as queries); queries are then classified by cosine similarity to the prototypes of the
adapted support embeddings. ``meta_loss`` is Reptile's (Nichol et al. 2018, Algorithm 2) over the LoRA
tensors only: its gradient is ``theta - phi``, the initialisation minus the task-adapted LoRA weights,
so an SGD outer step of size ``epsilon`` moves the initialisation toward the adapted weights.
Inputs are row numbers of ``texts`` (shape ``(n, 1)``), so the episode sampler can serve them. The
encoder runs without dropout throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learntolearn.algorithms.base import Algorithm, MetaLoss, accuracy, check_support
from learntolearn.nn.distances import cosine_similarity, prototypes
from learntolearn.nn.text_encoder import SentenceEncoder
from learntolearn.types import Task

Params = dict[str, Tensor]


class LoRAAdaptation(Algorithm):
    """Adapt LoRA weights of ``encoder`` (changed in place: LoRA layers injected) to each support set of ``texts``."""

    adapts_by_gradient = True

    def __init__(
        self,
        encoder: SentenceEncoder,
        texts: Sequence[str],
        *,
        rank: int = 8,
        steps: int = 5,
        lr: float = 1e-3,
        scale: float = 20.0,
    ) -> None:
        super().__init__()
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as err:
            raise ImportError("LoRA adaptation needs the PEFT library: pip install 'learntolearn[lora]'") from err
        inject_adapter_in_model(
            LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["query", "value"], lora_dropout=0.0), encoder.model
        )
        self.encoder, self.texts = encoder, list(texts)
        self.steps, self.lr, self.scale = steps, lr, scale
        self.lora = nn.ParameterDict(
            {
                name.replace(".", "__"): nn.Parameter(p.detach().clone())
                for name, p in encoder.named_parameters()
                if "lora_" in name
            }
        )
        for p in encoder.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> LoRAAdaptation:
        """Only the LoRA weights learn; the encoder always runs as at inference (no dropout), so adaptation is deterministic."""
        super().train(mode)
        self.encoder.eval()
        return self

    def initial(self) -> Params:
        return {name.replace("__", "."): p for name, p in self.lora.items()}

    def embed(self, params: Params, rows: Tensor) -> Tensor:
        tokens = self.encoder.tokenize([self.texts[i] for i in rows.reshape(-1).tolist()])
        return torch.func.functional_call(self.encoder, params, (tokens["input_ids"], tokens["attention_mask"]))

    def support_loss(self, params: Params, support_x: Tensor, support_y: Tensor, ways: int) -> Tensor:
        z = self.embed(params, support_x)
        return F.cross_entropy(self.scale * cosine_similarity(z, prototypes(z, support_y, ways)), support_y)

    def fast_weights(self, support_x: Tensor, support_y: Tensor) -> Params:
        ways = check_support(support_x, support_y)
        params = {name: p.detach().clone().requires_grad_() for name, p in self.initial().items()}
        optimizer = torch.optim.Adam(list(params.values()), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                optimizer.zero_grad()
                self.support_loss(params, support_x, support_y, ways).backward()
                optimizer.step()
        return {name: p.detach() for name, p in params.items()}

    def adapt(self, support_x: Tensor, support_y: Tensor) -> tuple[Tensor, Params]:
        params = self.fast_weights(support_x, support_y)
        with torch.no_grad():
            centres = prototypes(self.embed(params, support_x), support_y, check_support(support_x, support_y))
        return centres, params

    def predict(self, adapted: tuple[Tensor, Params], query_x: Tensor) -> Tensor:
        centres, params = adapted
        with torch.no_grad():
            return self.scale * cosine_similarity(self.embed(params, query_x), centres)

    def meta_loss(self, tasks: Sequence[Task]) -> MetaLoss:
        """Reptile: a surrogate whose gradient with respect to the initialisation is ``theta - mean(phi)``."""
        initial, surrogate, accuracies = self.initial(), torch.zeros(()), []
        for task in tasks:
            adapted = self.fast_weights(task.support_x, task.support_y)
            surrogate = surrogate + sum(0.5 * (initial[n] - adapted[n]).pow(2).sum() for n in initial) / len(tasks)
            with torch.no_grad():
                centres = prototypes(self.embed(adapted, task.support_x), task.support_y, task.ways)
            accuracies.append(accuracy(self.predict((centres, adapted), task.query_x), task.query_y))
        return MetaLoss(surrogate, sum(accuracies) / len(accuracies))
