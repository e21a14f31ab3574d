"""Episodes from random interpretation grammars, MLC's meta-training distribution (Lake & Baroni, Nature 2023,
"Human-like systematic generalization through a meta-learning neural network", Methods).

A grammar maps a few pseudowords to output symbols (``dax -> RED``) and gives a few other words a function
rule such as ``u1 fep x1 -> [x1] [u1] [x1]``: ``u`` variables hold one primitive word, ``x`` variables
any non-empty phrase, and a bracketed variable on the right is interpreted again. Rules apply in order,
first match wins, and a last rule ``u1 x1 -> [u1] [x1]`` concatenates. An episode samples a grammar, then
commands from the grammar's own phrase structure (at most 8 words in and 8 symbols out), split into study
examples and queries; every word of a query also occurs in the study examples, so the queries can be
answered from them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from learntolearn.errors import DataError

#: the pseudowords and output symbols of the paper's few-shot instruction task
WORDS = ("dax", "lug", "wif", "zup", "fep", "blicket", "kiki", "tufa", "gazzer")
SYMBOLS = ("RED", "YELLOW", "GREEN", "BLUE", "PURPLE", "PINK")
ATOMS, PHRASES = ("u1", "u2"), ("x1", "x2")

Pair = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class Rule:
    """``left -> right``; variables on the right are bracketed (``[x1]``) and interpreted recursively."""

    left: tuple[str, ...]
    right: tuple[str, ...]

    def __str__(self) -> str:
        return f"{' '.join(self.left)} -> {' '.join(self.right)}"


class Grammar:
    """Rules tried in order on a whole command; ``interpret`` rewrites a command into output symbols."""

    def __init__(self, rules: list[Rule], primitives: tuple[str, ...]) -> None:
        self.rules, self.primitives = list(rules), primitives
        atom = "(" + "|".join(map(re.escape, primitives)) + ")"
        self.patterns = [
            re.compile(
                " ".join(atom if w in ATOMS else "([a-zA-Z0-9 ]+)" if w in PHRASES else re.escape(w) for w in rule.left)
            )
            for rule in self.rules
        ]

    def interpret(self, command: tuple[str, ...], depth: int = 0) -> tuple[str, ...]:
        if depth > 50:
            raise DataError(f"interpreting {' '.join(command)!r} recursed too deeply")
        text = " ".join(command)
        for rule, pattern in zip(self.rules, self.patterns):
            match = pattern.fullmatch(text)
            if match is None:
                continue
            values = dict(zip((w for w in rule.left if w in ATOMS + PHRASES), match.groups()))
            out: list[str] = []
            for token in rule.right:
                name = token.strip("[]")
                out += self.interpret(tuple(values[name].split()), depth + 1) if token != name else [token]
            return tuple(out)
        return command  # no rule: the words stay (sampling rejects such commands)

    def __str__(self) -> str:
        return "\n".join(map(str, self.rules))


def random_grammar(rng: random.Random, primitives: int = 4, functions: int = 3, longest: int = 8) -> Grammar:
    """Primitive rules for ``primitives`` words, function rules for ``functions`` others, then concatenation.

    A function rule has one argument before its word (half the time) or one on each side; the argument
    kinds alternate randomly between one-word (``u``) and phrase (``x``) variables; its right side starts as
    the left's variables, grows by random ones (stopping with probability 0.6 once it has two) up to
    ``longest``, and is shuffled.
    """
    if primitives + functions > len(WORDS) or primitives > len(SYMBOLS):
        raise DataError(f"at most {len(WORDS)} words and {len(SYMBOLS)} symbols")
    words, symbols = rng.sample(WORDS, primitives + functions), rng.sample(SYMBOLS, primitives)
    rules = [Rule((word,), (symbol,)) for word, symbol in zip(words, symbols)]
    for word in words[primitives:]:
        atoms, phrases, variables = list(ATOMS), list(PHRASES), []
        for _ in range(1 if rng.random() < 0.5 else 2):
            pool = atoms if (rng.random() < 0.5 and atoms) or not phrases else phrases
            variables.append(pool.pop(0))
        left = (variables[0], word, *variables[1:])
        right = [f"[{v}]" for v in variables]
        while len(right) < longest and not (len(right) >= 2 and rng.random() < 0.6):
            right.append(f"[{rng.choice(variables)}]")
        rng.shuffle(right)
        rules.append(Rule(left, tuple(right)))
    rules.append(Rule(("u1", "x1"), ("[u1]", "[x1]")))
    return Grammar(rules, tuple(words[:primitives]))


def sample_command(grammar: Grammar, rng: random.Random, longest: int) -> tuple[str, ...] | None:
    """A command from the grammar's phrase structure (``X -> U | a rule's left side``), None if too long."""
    expansions: dict[str, list[tuple[str, ...]]] = {
        "U": [(p,) for p in grammar.primitives],
        "X": [("U",)]
        + [
            tuple("U" if w in ATOMS else "X" if w in PHRASES else w for w in r.left)
            for r in grammar.rules
            if len(r.left) > 1
        ],
    }
    sequence: tuple[str, ...] = ("X",)
    while any(s in expansions for s in sequence):
        sequence = tuple(w for s in sequence for w in (rng.choice(expansions[s]) if s in expansions else (s,)))
        if len(sequence) > longest:
            return None
    return sequence


@dataclass(frozen=True)
class GrammarEpisode:
    study: tuple[Pair, ...]
    queries: tuple[Pair, ...]
    grammar: Grammar


class GrammarEpisodes:
    """MLC's meta-training episodes: ``study`` and ``queries`` distinct examples of a fresh random grammar."""

    def __init__(self, *, study: int = 14, queries: int = 10, longest: int = 8, seed: int = 0) -> None:
        self.study, self.queries, self.longest = study, queries, longest
        self.random = random.Random(seed)

    def sample(self) -> GrammarEpisode:
        while True:
            grammar = random_grammar(self.random, longest=self.longest)
            examples = self.examples(grammar)
            if examples is None:
                continue
            self.random.shuffle(examples)
            study, queries = tuple(examples[: self.study]), tuple(examples[self.study :])
            seen = {w for command, _ in study for w in command}
            if all(set(command) <= seen for command, _ in queries):
                return GrammarEpisode(study, queries, grammar)

    def examples(self, grammar: Grammar) -> list[Pair] | None:
        """Distinct (command, output) pairs within the length limits; None if the grammar yields too few."""
        symbols = {rule.right[0] for rule in grammar.rules[: len(grammar.primitives)]}
        found: dict[tuple[str, ...], tuple[str, ...]] = {}
        for _ in range(2_000):
            command = sample_command(grammar, self.random, self.longest)
            if command is None or command in found:
                continue
            output = grammar.interpret(command)
            if len(output) <= self.longest and set(output) <= symbols:
                found[command] = output
                if len(found) == self.study + self.queries:
                    return list(found.items())
        return None
