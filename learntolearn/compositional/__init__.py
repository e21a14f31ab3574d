"""Compositional generalisation by meta-learning: models that read the meanings of words off study examples."""

from learntolearn.compositional.meta_seq2seq import MetaSeq2Seq

__all__ = ["MetaSeq2Seq"]
