"""Compositional generalisation by meta-learning: models that read the meanings of words off study examples."""

from learntolearn.compositional.meta_seq2seq import MetaSeq2Seq
from learntolearn.compositional.transformer import TransformerSeq2Seq

__all__ = ["MetaSeq2Seq", "TransformerSeq2Seq"]
