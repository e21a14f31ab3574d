"""Few-shot text classification data: CLINC150 intents and FewRel relations, read in their published formats.

A :class:`TextClassDataset` keeps its texts contiguous per class, like the image data sets, so the
same :class:`~learntolearn.data.EpisodeSampler` and fixed :class:`~learntolearn.data.EpisodeSet`
draw its episodes (and pair them across methods). Episodes carry rows of ``features``: sentence
embeddings from a frozen encoder (``dataset.with_features(encoder.encode(dataset.texts))``), or
token ids for methods that adapt the encoder itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from learntolearn.data.archives import RemoteFile, fetch_file
from learntolearn.data.indexed import ClassGroups
from learntolearn.data.roots import default_cache_root
from learntolearn.data.splits import clinc150 as clinc_splits
from learntolearn.errors import DataError

CLINC_URL = "https://raw.githubusercontent.com/clinc/oos-eval/828f8093932c8fe6ca7936c3d2e52903b1c523de/data/"
CLINC_FILES = {
    "data_full.json": RemoteFile(
        "data_full.json",
        CLINC_URL + "data_full.json",
        "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
        size=2495390,
    ),
    "domains.json": RemoteFile(
        "domains.json",
        CLINC_URL + "domains.json",
        "b947b579d3b8e74b06f93b01083d8efaff2888b43a3e362533bd88a6e1211b3a",
        size=3818,
    ),
}
FEWREL_URL = "https://raw.githubusercontent.com/thunlp/FewRel/278a2315d2138810a379cd8d5718914dc56e2582/data/"
FEWREL_FILES = {
    "val_wiki": RemoteFile(
        "val_wiki.json",
        FEWREL_URL + "val_wiki.json",
        "76bb44c2485b6faed358a3ce040eadafcc8a8835245cd7e6afc1bef672d4a0bf",
        size=3534147,
    ),
    "val_pubmed": RemoteFile(
        "val_pubmed.json",
        FEWREL_URL + "val_pubmed.json",
        "fc0f13b534f6664fe0d8aec231d7590313bc6510d00dbc1b6746147f6a2b46e6",
        size=432600,
    ),
    "val_nyt": RemoteFile(
        "val_nyt.json",
        FEWREL_URL + "val_nyt.json",
        "b519adc61a2bab0f05178e33a3cd8f284338b635629493e9e09616ba81bb428e",
        size=1032006,
    ),
    "val_semeval": RemoteFile(
        "val_semeval.json",
        FEWREL_URL + "val_semeval.json",
        "fd79cf35481f6596c23b92cd3ded3265481f3027a4b78d99921104f8fe632eb5",
        size=2203006,
    ),
}
CLINC_SPLITS = {"intent": clinc_splits.BY_INTENT_V1, "domain": clinc_splits.BY_DOMAIN_V1}
OOS_PARTS = {"train": "oos_train", "val": "oos_val", "test": "oos_test"}


@dataclass(frozen=True)
class TextClassDataset(ClassGroups):
    """Texts of a set of classes, contiguous per class; class ``c`` owns ``texts[offsets[c]:offsets[c + 1]]``.

    ``features`` (one row per text), when set, is what episodes carry; see :meth:`with_features`.
    """

    name: str
    texts: tuple[str, ...]
    offsets: Tensor
    class_names: tuple[str, ...]
    features: Tensor | None = None

    def __post_init__(self) -> None:
        self.check_groups(len(self.texts), "texts")
        if self.features is not None and self.features.shape[0] != len(self.texts):
            raise DataError(f"features must have one row per text ({len(self.texts)}), got {self.features.shape[0]}")

    @classmethod
    def from_groups(cls, name: str, groups: dict[str, list[str]]) -> TextClassDataset:
        """Build from ``{class name: [text, ...]}`` (classes in the dict's order)."""
        offsets = cls.offsets_from_counts([len(texts) for texts in groups.values()])
        return cls(name, tuple(t for texts in groups.values() for t in texts), offsets, tuple(groups))

    @property
    def labels(self) -> Tensor:
        """Class index of every text."""
        return torch.repeat_interleave(torch.arange(self.n_classes), self.counts)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input as episodes carry it: one row of ``features``."""
        if self.features is None:
            raise DataError(f"{self.name} carries no features yet; see with_features")
        return tuple(self.features.shape[1:])

    def with_features(self, features: Tensor) -> TextClassDataset:
        """The same texts and classes, with episodes carrying rows of ``features``."""
        return dataclasses.replace(self, features=features)

    def to_float(self, indices: Tensor) -> Tensor:
        """Feature rows at ``indices`` (what the episode sampler gathers)."""
        if self.features is None:
            raise DataError(
                f"{self.name} has texts but no features yet; encode them first: "
                f"dataset.with_features(encoder.encode(dataset.texts))"
            )
        return self.features[indices]


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); is it the official {what} file?") from err
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}); "
            f"is it the official {what} file, completely downloaded?"
        ) from err


def _clean(text, where: str) -> str:
    if not isinstance(text, str):
        raise DataError(f"{where}: expected a text, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise DataError(f"{where}: empty text")
    return text


def _clinc_pairs(data: dict, part: str, path: Path) -> list[tuple[str, str]]:
    if part not in data:
        raise DataError(f"{path} has no {part!r} part (found {sorted(data)}); is it CLINC150's data_full.json?")
    pairs = []
    for i, item in enumerate(data[part]):
        if not (isinstance(item, list) and len(item) == 2):
            raise DataError(f"{path}, {part}[{i}]: expected [text, intent], got {item!r}")
        pairs.append((_clean(item[0], f"{path}, {part}[{i}]"), item[1]))
    return pairs


def clinc150_domains(
    data_root: str | os.PathLike[str] | None = None, *, download: bool = False
) -> dict[str, tuple[str, ...]]:
    """CLINC150's ten domains and the fifteen intents of each (``domains.json``)."""
    path = fetch_file(CLINC_FILES["domains.json"], data_root, "clinc150", download, "CLINC150 file")
    domains = _read_json(path, "CLINC150 domains.json")
    if not isinstance(domains, dict) or not all(isinstance(v, list) for v in domains.values()):
        raise DataError(f"{path} is not CLINC150's domains.json (a mapping of domains to lists of intents)")
    return {domain: tuple(intents) for domain, intents in domains.items()}


def load_clinc150(
    data_root: str | os.PathLike[str] | None = None,
    split: str = "intent",
    subset: str = "train",
    *,
    download: bool = False,
) -> TextClassDataset:
    """The intents of ``subset`` (train, val or test) of CLINC150 split by ``intent`` or by ``domain``.

    Every intent brings all 150 of its utterances (the official train, val and test parts).
    """
    if split not in CLINC_SPLITS:
        raise DataError(f"unknown CLINC150 split {split!r}; choose from {sorted(CLINC_SPLITS)}")
    if subset not in OOS_PARTS:
        raise DataError(f"unknown subset {subset!r} of the CLINC150 {split} split; choose from {sorted(OOS_PARTS)}")
    path = fetch_file(CLINC_FILES["data_full.json"], data_root, "clinc150", download, "CLINC150 file")
    data = _read_json(path, "CLINC150 data_full.json")
    if split == "intent":
        intents = CLINC_SPLITS[split][subset]
    else:
        domains = clinc150_domains(data_root, download=download)
        intents = tuple(sorted(i for d in CLINC_SPLITS[split][subset] for i in domains[d]))
    groups: dict[str, list[str]] = {intent: [] for intent in intents}
    for part in ("train", "val", "test"):
        for text, intent in _clinc_pairs(data, part, path):
            if intent in groups:
                groups[intent].append(text)
    missing = [intent for intent, texts in groups.items() if not texts]
    if missing:
        raise DataError(f"{path} has no utterances of intent(s) {missing}; is it CLINC150's data_full.json?")
    return TextClassDataset.from_groups(f"clinc150/{split}-v{clinc_splits.SPLIT_VERSION}/{subset}", groups)


def load_clinc150_features(
    split: str = "intent",
    subset: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **_: object,
) -> TextClassDataset:
    """:func:`load_clinc150` with every text embedded by the packaged sentence encoder, as ``ltl train`` reads it.

    The embeddings are cached under the user's cache folder, keyed by the encoder and the texts.
    """
    from learntolearn.nn.text_encoder import SentenceEncoder, encode_cached  # the optional text extra, on use only

    dataset = load_clinc150(data_root, split, subset, download=download)
    return dataset.with_features(encode_cached(SentenceEncoder(), dataset.texts, default_cache_root() / "features"))


def load_clinc150_out_of_scope(
    data_root: str | os.PathLike[str] | None = None, subset: str = "test", *, download: bool = False
) -> tuple[str, ...]:
    """CLINC150's out-of-scope utterances for ``subset`` (oos_train, oos_val or oos_test)."""
    if subset not in OOS_PARTS:
        raise DataError(f"unknown subset {subset!r}; choose from {sorted(OOS_PARTS)}")
    path = fetch_file(CLINC_FILES["data_full.json"], data_root, "clinc150", download, "CLINC150 file")
    return tuple(text for text, _ in _clinc_pairs(_read_json(path, "CLINC150 data_full.json"), OOS_PARTS[subset], path))


def mark_entities(tokens: list[str], head: list[int], tail: list[int]) -> str:
    """The sentence with its head entity wrapped in ``<h> ... </h>`` and its tail in ``<t> ... </t>``."""
    words = list(tokens)
    for positions, (left, right) in ((head, ("<h>", "</h>")), (tail, ("<t>", "</t>"))):
        words[positions[0]] = f"{left} {words[positions[0]]}"
        words[positions[-1]] = f"{words[positions[-1]]} {right}"
    return " ".join(words)


def load_fewrel(
    data_root: str | os.PathLike[str] | None = None, name: str = "val_wiki", *, download: bool = False
) -> TextClassDataset:
    """A FewRel file (``val_wiki``: FewRel 1.0 validation; ``val_pubmed``, ``val_nyt``, ``val_semeval``: the
    FewRel 2.0 domain-adaptation sets) as relations of entity-marked sentences (see :func:`mark_entities`)."""
    if name not in FEWREL_FILES:
        raise DataError(f"unknown FewRel file {name!r}; choose from {sorted(FEWREL_FILES)}")
    path = fetch_file(FEWREL_FILES[name], data_root, "fewrel", download, "FewRel file")
    data = _read_json(path, f"FewRel {name}.json")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected {{relation: [instance, ...]}}, got {type(data).__name__}")
    groups: dict[str, list[str]] = {}
    for relation in sorted(data):
        texts = []
        for i, instance in enumerate(data[relation]):
            where = f"{path}, {relation}[{i}]"
            try:
                tokens, head, tail = instance["tokens"], instance["h"][2][0], instance["t"][2][0]
                texts.append(_clean(mark_entities(tokens, head, tail), where))
            except (KeyError, IndexError, TypeError) as err:
                raise DataError(
                    f"{where}: expected {{'tokens': [...], 'h': [name, id, [[positions]]], 't': ...}} "
                    f"({type(err).__name__}: {err})"
                ) from err
        groups[relation] = texts
    return TextClassDataset.from_groups(f"fewrel/{name}", groups)


#: FewRel's one split for ``ltl train``: its published files are the subsets (relations differ between files)
FEWREL_SPLITS = {"files": tuple(FEWREL_FILES)}


def load_fewrel_features(
    split: str = "files",
    subset: str = "val_wiki",
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **_: object,
) -> TextClassDataset:
    """:func:`load_fewrel` of the file ``subset`` with every sentence embedded by the packaged encoder (cached),
    as ``ltl train --dataset fewrel --split files --train-subset val_nyt --test-subset val_wiki`` reads it."""
    from learntolearn.nn.text_encoder import SentenceEncoder, encode_cached  # the optional text extra, on use only

    dataset = load_fewrel(data_root, subset, download=download)
    return dataset.with_features(encode_cached(SentenceEncoder(), dataset.texts, default_cache_root() / "features"))
