"""SCAN (Lake & Baroni, ICML 2018): commands such as ``jump twice after walk left`` and their action sequences.

Read from the authors' files (``brendenlake/SCAN`` at commit ``c4b756c``; one ``IN: <command> OUT: <actions>``
per line), checked against their SHA-256 on every read and downloaded on first use when allowed. The
splits: ``simple`` (random 80/20), ``length`` (test actions longer than any in training),
``addprim_jump`` and ``addprim_turn_left`` (a primitive seen in training only on its own), and the
template splits of Loula, Rosa & Lake 2018 (``template_around_right``, ``template_opposite_right``,
``template_right``, ``template_jump_around_right``); ``all`` is every command once.

For meta seq2seq (Lake, NeurIPS 2019), :class:`PrimitiveRemapEpisodes` builds episodes whose study
examples assign the primitive commands (``jump``, ``run``, ``walk``, ``look``) a random permutation of
their actions, and whose queries are other commands with their outputs under that assignment: to
answer them a learner must read the meanings off the study examples.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from learntolearn.data.archives import RemoteFile, fetch_file
from learntolearn.errors import DataError

COMMIT = "c4b756cbc010d75c912f16c42c8f15dc6b7e6c8f"
URL = f"https://raw.githubusercontent.com/brendenlake/SCAN/{COMMIT}/"
#: split -> (folder, training file, test file)
SPLITS: dict[str, tuple[str, str, str]] = {
    "simple": ("simple_split", "tasks_train_simple.txt", "tasks_test_simple.txt"),
    "length": ("length_split", "tasks_train_length.txt", "tasks_test_length.txt"),
    "addprim_jump": ("add_prim_split", "tasks_train_addprim_jump.txt", "tasks_test_addprim_jump.txt"),
    "addprim_turn_left": ("add_prim_split", "tasks_train_addprim_turn_left.txt", "tasks_test_addprim_turn_left.txt"),
    "template_around_right": (
        "template_split",
        "tasks_train_template_around_right.txt",
        "tasks_test_template_around_right.txt",
    ),
    "template_opposite_right": (
        "template_split",
        "tasks_train_template_opposite_right.txt",
        "tasks_test_template_opposite_right.txt",
    ),
    "template_right": ("template_split", "tasks_train_template_right.txt", "tasks_test_template_right.txt"),
    "template_jump_around_right": (
        "template_split",
        "tasks_train_template_jump_around_right.txt",
        "tasks_test_template_jump_around_right.txt",
    ),
}
#: file (relative to scan/) -> SHA-256 of the authors' file
CHECKSUMS = {
    "tasks.txt": "d824c7d9e9149ba497e25f701981dac79954e04bf670d22e5c209f076ac6c89f",
    "simple_split/tasks_train_simple.txt": "941bb8a088c5f53ceff12fde902dc008933cf0c4203cc672c47b5f79d73262dd",
    "simple_split/tasks_test_simple.txt": "1fe1c8f5a19d0dc40e41bab94278f45f66f3dc415a978bd29855a23440610fc6",
    "length_split/tasks_train_length.txt": "b034212dc7cf87ce62f3a067dd6ad49c4d5cd18d51d615d13825516bcb1ebbc2",
    "length_split/tasks_test_length.txt": "0760752ed34a75116ae11dcc1ee17526b7500060da1366540730fa24894d7db3",
    "add_prim_split/tasks_train_addprim_jump.txt": "e3c78485692e028eed4205e1b8b3fd0e785ef2c12d45b5b89204dadf5b239e23",
    "add_prim_split/tasks_test_addprim_jump.txt": "8147ae2651422c701162e174d9d66158daa57858a26b30317ac61797118ac7a5",
    "add_prim_split/tasks_train_addprim_turn_left.txt": "1b3fed86055dd7689d217f1b90cc8960aeb1cf200f4f209dc47935761b05304c",
    "add_prim_split/tasks_test_addprim_turn_left.txt": "15a82c2d25ac7c3c1fff7e18051fb085974ef3617de895c520d02144396a10e2",
    "template_split/tasks_train_template_around_right.txt": (
        "d5d35d174d557645fc61f289424afa0d95fde21422c59a9819e2d0fcfa9d419f"
    ),
    "template_split/tasks_test_template_around_right.txt": (
        "fc78a5d1077dc2c206d6c42ed89fb9022867618c3f331179bafd3ec1ca699474"
    ),
    "template_split/tasks_train_template_opposite_right.txt": (
        "b4fe224a2dd636952a90b7e5552017620ab07e0c465db0ee2dddfb0f727feeb6"
    ),
    "template_split/tasks_test_template_opposite_right.txt": (
        "e7fc129633f82decd39248517a8945385b77009f721f9f4f58df213f73a29a47"
    ),
    "template_split/tasks_train_template_right.txt": "a09e125dc95c59843d087fd50852c57bc4e77997e2cd69aa04a9a934eea9089b",
    "template_split/tasks_test_template_right.txt": "506bed814f8a6ec1eef9c226eb9b2055bc984925902a94d020a23a41080993bb",
    "template_split/tasks_train_template_jump_around_right.txt": (
        "f63ba9149feeb021fbb44132265d7b15e6a07e6b12c9d3220418d97d97d71735"
    ),
    "template_split/tasks_test_template_jump_around_right.txt": (
        "a3a27e06adece97da26ae506de08c4b6848035970c561691edbf4dcb1e45f9af"
    ),
}
#: the primitive commands and the action each means in SCAN
PRIMITIVES = {"jump": "I_JUMP", "run": "I_RUN", "walk": "I_WALK", "look": "I_LOOK"}

Pair = tuple[tuple[str, ...], tuple[str, ...]]


def remote(relative: str) -> RemoteFile:
    return RemoteFile(Path(relative).name, URL + relative, CHECKSUMS[relative])


def scan_file(relative: str, data_root: str | os.PathLike[str] | None, download: bool) -> list[Pair]:
    """The (command, actions) pairs of one of the authors' files, after checking its SHA-256."""
    folder = str(Path("scan") / Path(relative).parent)
    path = fetch_file(remote(relative), data_root, folder, download, f"SCAN file {relative}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != CHECKSUMS[relative]:
        raise DataError(f"{path} is not the authors' {relative} (its SHA-256 differs); delete it and download again")
    return parse_pairs(data.decode("utf-8").splitlines(), str(path))


def parse_pairs(lines: Iterable[str], source: str) -> list[Pair]:
    """``IN: <command> OUT: <actions>`` lines as token tuples; a malformed line is an error naming it."""
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        head, separator, actions = line.partition(" OUT: ")
        if not head.startswith("IN: ") or not separator or not head[4:].split() or not actions.split():
            raise DataError(f"{source}:{number}: expected 'IN: <command> OUT: <actions>', got {line[:80]!r}")
        pairs.append((tuple(head[4:].split()), tuple(actions.split())))
    return pairs


def load_scan(
    split: str = "simple",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> list[Pair]:
    """The ``train`` or ``test`` pairs of a SCAN split (or every command, ``split="all"``, ``subset="all"``)."""
    if split == "all":
        return scan_file("tasks.txt", data_root, download)
    if split not in SPLITS:
        raise DataError(f"unknown SCAN split {split!r}; choose from all, {', '.join(SPLITS)}")
    if subset not in ("train", "test"):
        raise DataError(f"unknown SCAN subset {subset!r}; choose from train, test")
    folder, train, test = SPLITS[split]
    return scan_file(f"{folder}/{train if subset == 'train' else test}", data_root, download)


@dataclass(frozen=True)
class Vocabulary:
    """Tokens and their ids, with ``<pad>`` 0, ``<sos>`` 1 and ``<eos>`` 2; unknown tokens are an error."""

    tokens: tuple[str, ...]

    SPECIALS = ("<pad>", "<sos>", "<eos>")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> Vocabulary:
        return cls(cls.SPECIALS + tuple(sorted({token for sequence in sequences for token in sequence})))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, sequence: Sequence[str], *, eos: bool = True) -> list[int]:
        """Ids of ``sequence`` (then ``<eos>``); words the vocabulary lacks are listed in the error."""
        index = self.index
        unknown = sorted({token for token in sequence if token not in index})
        if unknown:
            raise DataError(f"unknown word(s) {', '.join(unknown)}: this vocabulary knows {', '.join(self.tokens[3:])}")
        if not sequence:
            raise DataError("an empty sequence; give at least one word")
        return [index[token] for token in sequence] + ([2] if eos else [])

    def decode(self, ids: Iterable[int]) -> tuple[str, ...]:
        """Tokens up to the first ``<eos>``, without the specials."""
        out = []
        for i in ids:
            if i == 2:
                break
            if i > 2:
                out.append(self.tokens[i])
        return tuple(out)


@dataclass(frozen=True)
class Episode:
    """Study examples and queries that share one meaning of the primitives."""

    study: tuple[Pair, ...]
    queries: tuple[Pair, ...]
    #: primitive command -> the action it means in this episode
    meaning: dict[str, str]


class PrimitiveRemapEpisodes:
    """Meta seq2seq's SCAN episodes (Lake 2019): the primitives mean a random permutation of their actions.

    Each episode draws a bijection from ``primitives`` to their actions (never SCAN's own, which is the
    test episode) and poses ``queries`` commands from ``pairs`` with every primitive's action replaced by
    its new one. The study examples are either the primitives alone (``study=None``; queries are then the
    longer commands that use a primitive) or ``study`` further commands under the same assignment, drawn
    from ``pairs`` without overlapping the queries. ``rename_words`` also renames the primitive words in
    every command by a random permutation, as the authors' code does, so that each primitive word occurs
    in every construction of ``pairs``; without it a word seen only alone in ``pairs`` stays so.
    ``keep`` is the probability that an episode keeps SCAN's own meanings (MLC's SCAN code keeps them in
    5% of episodes; meta seq2seq never, since they are its test). :meth:`test` keeps SCAN's meanings and
    shows the primitives alone, as at evaluation.

    ``extra`` adds abstract primitives (word -> action, e.g. ``{"1": "I_1"}``): each episode then writes the
    primitives of ``pairs`` with words drawn from all of them and gives them actions drawn from all of
    them, as Lake's around-right episodes do. ``held_out`` names word -> action assignments no episode
    makes (Lake: "right" never means I_TURN_RIGHT); without it only SCAN's whole assignment is withheld.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        primitives: dict[str, str] | None = None,
        queries: int = 20,
        study: int | None = None,
        rename_words: bool = False,
        keep: float = 0.0,
        extra: dict[str, str] | None = None,
        held_out: dict[str, str] | None = None,
        seed: int = 0,
    ) -> None:
        self.primitives = dict(primitives or PRIMITIVES)
        self.extra, self.held_out = dict(extra or {}), dict(held_out or {})
        self.keep = keep
        every = {**self.primitives, **self.extra}
        if len(self.primitives) < 2 or len(set(every.values())) != len(every) or set(self.primitives) & set(self.extra):
            raise DataError("permuting meanings needs at least two primitives, each word and action its own")
        if any(every.get(word) != action for word, action in self.held_out.items()):
            raise DataError(f"held_out {self.held_out} must pair primitives with their own actions")
        words = set(self.primitives)
        self.pairs = (
            [pair for pair in pairs if words.intersection(pair[0]) and len(pair[0]) > 1]
            if study is None
            else list(pairs)
        )
        if not self.pairs:
            raise DataError("no command combines a primitive with other words; these pairs make no queries")
        self.queries, self.study, self.rename_words = queries, study, rename_words
        self.random = random.Random(seed)

    def alone(self, meaning: dict[str, str]) -> tuple[Pair, ...]:
        return tuple(((word,), (action,)) for word, action in meaning.items())

    def episode(self, meaning: dict[str, str], renaming: dict[str, str] | None = None) -> Episode:
        """The episode in which each primitive means ``meaning[primitive]``, its words renamed by ``renaming``."""
        renaming = renaming or {word: word for word in self.primitives}
        # the primitive written ``word`` in ``pairs`` is written ``renaming[word]`` and means ``meaning[renaming[word]]``
        # (the words of ``meaning`` are those of ``renaming``'s values)
        actions = {self.primitives[word]: meaning[renaming[word]] for word in self.primitives}

        def relabel(pair: Pair) -> Pair:
            command, output = pair
            return tuple(renaming.get(w, w) for w in command), tuple(actions.get(a, a) for a in output)

        chosen = [
            relabel(pair)
            for pair in self.random.sample(self.pairs, min(self.queries + (self.study or 0), len(self.pairs)))
        ]
        study = self.alone(meaning) if self.study is None else tuple(chosen[self.queries :])
        return Episode(study, tuple(chosen[: self.queries]), dict(meaning))

    def sample(self) -> Episode:
        words, n = list(self.primitives), len(self.primitives)
        if self.keep and self.random.random() < self.keep:
            return self.episode(dict(self.primitives))
        actions = [self.primitives[w] for w in words] + list(self.extra.values())
        while True:
            written = self.random.sample(words + list(self.extra), n) if self.extra else words
            meaning = dict(zip(written, self.random.sample(actions, n)))
            if self.held_out:
                if not any(meaning.get(word) == action for word, action in self.held_out.items()):
                    break
            elif meaning != self.primitives:
                break
        if self.rename_words:
            return self.episode(meaning, dict(zip(words, self.random.sample(written, n))))
        return self.episode(meaning, dict(zip(words, written)))

    def test(self) -> Episode:
        episode = self.episode(dict(self.primitives))
        return Episode(self.alone(self.primitives), episode.queries, episode.meaning)
