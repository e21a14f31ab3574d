"""Omniglot class splits, encoded as ordered (alphabet, first character, last character) runs.

``VINYALS_V1`` is the split of Vinyals et al., "Matching Networks for One Shot Learning" (NeurIPS 2016),
as published with Snell et al.'s Prototypical Networks (``data/omniglot/splits/vinyals/*.txt``) and used by
MAML: 1,028 train / 172 val / 423 test characters, each in four rotations (0, 90, 180, 270 degrees).
It takes alphabets from both official archives and is by whole alphabets except Gurmukhi, whose
characters 1-41 are in train and 42-45 in test. Expanding each run character by character, rotations
innermost, gives the published files line for line (asserted in the tests).
"""

from __future__ import annotations

Run = tuple[str, int, int]

VINYALS_V1: dict[str, tuple[Run, ...]] = {
    "train": (
        ("Angelic", 1, 20),
        ("Grantha", 1, 43),
        ("N_Ko", 1, 33),
        ("Aurek-Besh", 1, 26),
        ("Japanese_(hiragana)", 1, 52),
        ("Malay_(Jawi_-_Arabic)", 1, 40),
        ("Asomtavruli_(Georgian)", 1, 40),
        ("Sanskrit", 1, 42),
        ("Ojibwe_(Canadian_Aboriginal_Syllabics)", 1, 14),
        ("Korean", 1, 40),
        ("Arcadian", 1, 26),
        ("Greek", 1, 24),
        ("Alphabet_of_the_Magi", 1, 20),
        ("Blackfoot_(Canadian_Aboriginal_Syllabics)", 1, 14),
        ("Futurama", 1, 26),
        ("Gurmukhi", 1, 41),
        ("Tagalog", 1, 17),
        ("Anglo-Saxon_Futhorc", 1, 29),
        ("Braille", 1, 26),
        ("Cyrillic", 1, 33),
        ("Burmese_(Myanmar)", 1, 34),
        ("Avesta", 1, 26),
        ("Gujarati", 1, 48),
        ("Ge_ez", 1, 26),
        ("Syriac_(Estrangelo)", 1, 23),
        ("Atlantean", 1, 26),
        ("Japanese_(katakana)", 1, 47),
        ("Balinese", 1, 24),
        ("Atemayar_Qelisayer", 1, 26),
        ("Glagolitic", 1, 45),
        ("Tifinagh", 1, 55),
        ("Latin", 1, 26),
        ("Inuktitut_(Canadian_Aboriginal_Syllabics)", 1, 16),
    ),
    "val": (
        ("Hebrew", 1, 22),
        ("Mkhedruli_(Georgian)", 1, 41),
        ("Armenian", 1, 41),
        ("Early_Aramaic", 1, 22),
        ("Bengali", 1, 46),
    ),
    "test": (
        ("Gurmukhi", 42, 45),
        ("Kannada", 1, 41),
        ("Keble", 1, 26),
        ("Malayalam", 1, 47),
        ("Manipuri", 1, 40),
        ("Mongolian", 1, 30),
        ("Old_Church_Slavonic_(Cyrillic)", 1, 45),
        ("Oriya", 1, 46),
        ("Syriac_(Serto)", 1, 23),
        ("Sylheti", 1, 28),
        ("Tengwar", 1, 25),
        ("Tibetan", 1, 42),
        ("ULOG", 1, 26),
    ),
}
VINYALS_V1["trainval"] = VINYALS_V1["train"] + VINYALS_V1["val"]

ROTATIONS = (0, 90, 180, 270)


def expand(runs: tuple[Run, ...], rotations: tuple[int, ...] = ROTATIONS) -> list[str]:
    """Class names ``Alphabet/characterNN/rotDDD`` of a split, in the published order."""
    return [
        f"{alphabet}/character{c:02d}/rot{r:03d}"
        for alphabet, first, last in runs
        for c in range(first, last + 1)
        for r in rotations
    ]
