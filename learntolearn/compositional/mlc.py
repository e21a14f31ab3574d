"""Meta-learning for compositionality, MLC (Lake & Baroni, Nature 2023): a standard transformer whose source
is the query followed by the episode's study examples, ``query | in -> out | in -> out ...``.

Nothing in the network is specific to the task: trained across episodes whose words change meaning (random
interpretation grammars, :mod:`learntolearn.data.interpretation_grammars`, or SCAN with its primitives'
meanings permuted), it learns to read the meanings off the study examples in its input. The input vocabulary
holds the command words, the output symbols (they appear in study examples) and the two separators; the
output vocabulary only the output symbols.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor

from learntolearn.compositional.meta_seq2seq import pad
from learntolearn.data.scan import Pair, Vocabulary

SEPARATOR, ARROW = "|", "->"


def mlc_source(query: Sequence[str], study: Sequence[Pair]) -> tuple[str, ...]:
    """``query | in -> out | in -> out ...`` as tokens."""
    out = list(query)
    for command, output in study:
        out += [SEPARATOR, *command, ARROW, *output]
    return tuple(out)


class MLCCodec:
    """Vocabularies for MLC sources (``inputs``) and targets (``outputs``), and padded batches of queries."""

    def __init__(self, words: Iterable[str], symbols: Iterable[str]) -> None:
        symbols = sorted(set(symbols))
        self.words = frozenset(words)
        self.inputs = Vocabulary.build([sorted(self.words), symbols, [SEPARATOR, ARROW]])
        self.outputs = Vocabulary.build([symbols])

    def batch(self, episodes: Sequence[tuple[Sequence[Pair], Sequence[Pair]]]) -> tuple[Tensor, Tensor]:
        """Sources (each query with its episode's study examples) and targets of the ``(study, queries)``
        episodes' queries, one row per query."""
        sources = [mlc_source(command, study) for study, queries in episodes for command, _ in queries]
        targets = [output for _, queries in episodes for _, output in queries]
        return pad([self.inputs.encode(s, eos=False) for s in sources]), pad([self.outputs.encode(t) for t in targets])

    def sources(self, study: Sequence[Pair], commands: Sequence[Sequence[str]]) -> Tensor:
        """Sources of ``commands`` under the same study examples (for decoding)."""
        return pad([self.inputs.encode(mlc_source(command, study), eos=False) for command in commands])
