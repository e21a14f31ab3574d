"""Training, scoring and using sequence models on SCAN: meta seq2seq, its seq2seq baseline, a transformer, MLC.

A run folder holds one ``checkpoint.pt`` (the run's settings, vocabularies, model, optimiser and random
states), written atomically every ``checkpoint_every`` steps, so a stopped run continues where it was.
:func:`train_run` trains (or resumes), :func:`score_run` decodes a split's test set greedily and scores
exact matches, :class:`ScanTranslator` turns commands into action sequences with a trained run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from learntolearn.compositional.meta_seq2seq import NETWORK_VERSION, MetaSeq2Seq, pad
from learntolearn.compositional.mlc import ARROW, SEPARATOR, MLCCodec, mlc_source
from learntolearn.compositional.transformer import TransformerSeq2Seq
from learntolearn.data.scan import PRIMITIVES, Pair, PrimitiveRemapEpisodes, Vocabulary, load_scan
from learntolearn.errors import DataError, LtlError
from learntolearn.files import load_tensors, save_tensors

METHODS = ("meta-seq2seq", "seq2seq", "transformer", "mlc")
SequenceModel = MetaSeq2Seq | TransformerSeq2Seq
#: the words whose meanings MLC's SCAN episodes permute (the authors' "actions" remapping)
DIRECTIONS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
ACTION_WORDS = {**PRIMITIVES, **DIRECTIONS}
#: the study example MLC's evaluation always shows, per split: the new primitive on its own
NEW_PRIMITIVE: dict[str, Pair] = {
    "addprim_jump": (("jump",), ("I_JUMP",)),
    "addprim_turn_left": (("turn", "left"), ("I_TURN_LEFT",)),
}


@dataclass(frozen=True)
class MetaProtocol:
    """Meta seq2seq's episodes for one split as Lake's code builds them: which words' meanings are permuted
    (with abstract ``extra`` ones mixed in), which assignments no training episode makes, and the study
    examples at test: each primitive after ``prefix`` with its meaning."""

    primitives: dict[str, str]
    extra: dict[str, str]
    held_out: dict[str, str] | None
    prefix: tuple[str, ...] = ()

    def study(self, meaning: dict[str, str]) -> tuple[Pair, ...]:
        return tuple(((*self.prefix, word), (action,)) for word, action in meaning.items())


#: the splits meta seq2seq has episodes for: add jump permutes the four primitives (SCAN's whole assignment
#: withheld); around right permutes the two directions among four ("right" never means I_TURN_RIGHT)
META_PROTOCOLS = {
    "addprim_jump": MetaProtocol(PRIMITIVES, {}, None),
    "template_around_right": MetaProtocol(DIRECTIONS, {"1": "I_1", "2": "I_2"}, {"right": "I_TURN_RIGHT"}, ("turn",)),
}


@dataclass(frozen=True)
class ScanRunConfig:
    """One SCAN run. ``queries`` is the episode's query count (meta seq2seq), the batch of training
    commands (seq2seq, transformer) or of one-query episodes (MLC, whose ``study`` examples are training
    commands); ``hidden`` and ``layers`` size the LSTMs or the transformer."""

    method: str = "meta-seq2seq"
    #: meta seq2seq's episodes: ``lake2019`` (the authors' code) or ``primitives-alone`` (stricter)
    protocol: str = "lake2019"
    split: str = "addprim_jump"
    steps: int = 10_000
    queries: int = 20
    study: int = 20
    hidden: int = 200
    layers: int = 2
    heads: int = 8
    feedforward: int = 512
    dropout: float = 0.5
    #: the transformers' dropout of attention weights (None: ``dropout``, as the networks before it)
    attention_dropout: float | None = None
    lr: float = 1e-3
    #: divide the learning rate by 10 this often (a fresh Adam, as Lake's code)
    lr_decay_every: int = 5_000
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise LtlError(f"unknown SCAN method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.protocol not in ("lake2019", "primitives-alone"):
            raise LtlError(f"unknown protocol {self.protocol!r}; choose lake2019 or primitives-alone")
        if self.method == "meta-seq2seq" and self.split not in META_PROTOCOLS:
            raise LtlError(f"meta seq2seq has episodes for the splits {', '.join(META_PROTOCOLS)}, not {self.split!r}")
        if self.method == "meta-seq2seq" and self.protocol == "primitives-alone" and self.split != "addprim_jump":
            raise LtlError("the primitives-alone protocol is defined for addprim_jump only")

    @property
    def name(self) -> str:
        method = f"{self.method}-{self.protocol}" if self.method == "meta-seq2seq" else self.method
        return f"scan-{method}-{self.split}-seed{self.seed}"


#: the transformer sized for this CPU (2+2 layers of 128), trained on batches of training commands
TRANSFORMER = ScanRunConfig(
    method="transformer",
    queries=32,
    hidden=128,
    layers=2,
    feedforward=256,
    dropout=0.1,
    lr=5e-4,
    steps=5_000,
    lr_decay_every=4_000,
)
#: named settings for ``ltl scan train``
PRESETS = {
    "metaseq2seq-scan-addjump": ScanRunConfig(),
    "metaseq2seq-scan-aroundright": ScanRunConfig(split="template_around_right"),
    "seq2seq-scan-addjump": ScanRunConfig(method="seq2seq"),
    **{
        f"transformer-scan-{short}": replace(TRANSFORMER, split=split)
        for short, split in (
            ("addjump", "addprim_jump"),
            ("simple", "simple"),
            ("length", "length"),
            ("aroundright", "template_around_right"),
        )
    },
    # the same network reading 10 study commands in its source, 8 one-query episodes a step; attention weights
    # are not dropped (on CPU that would take the unfused attention path), the residual dropout stays
    **{
        f"mlc-scan-{short}": replace(
            TRANSFORMER,
            method="mlc",
            split=split,
            queries=8,
            study=10,
            steps=12_000,
            lr_decay_every=10_000,
            attention_dropout=0.0,
        )
        for short, split in (
            ("addjump", "addprim_jump"),
            ("aroundright", "template_around_right"),
            ("length", "length"),
        )
    },
}


def build_model(config: ScanRunConfig, inputs: int, outputs: int) -> SequenceModel:
    if config.method in ("transformer", "mlc"):
        return TransformerSeq2Seq(
            inputs,
            outputs,
            width=config.hidden,
            heads=config.heads,
            encoder_layers=config.layers,
            decoder_layers=config.layers,
            feedforward=config.feedforward,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
        )
    return MetaSeq2Seq(inputs, outputs, hidden=config.hidden, dropout=config.dropout, layers=config.layers)


class Codec:
    """The two vocabularies of a split (training and test commands) and the padded tensors of pairs."""

    def __init__(self, inputs: Vocabulary, outputs: Vocabulary) -> None:
        self.inputs, self.outputs = inputs, outputs

    @classmethod
    def of(cls, pairs: Sequence[Pair]) -> Codec:
        return cls(Vocabulary.build(c for c, _ in pairs), Vocabulary.build(o for _, o in pairs))

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.inputs.tokens[3:])

    def commands(self, commands: Sequence[Sequence[str]]) -> Tensor:
        return pad([self.inputs.encode(c, eos=False) for c in commands])

    def pairs(self, pairs: Sequence[Pair]) -> tuple[Tensor, Tensor]:
        return self.commands([c for c, _ in pairs]), pad([self.outputs.encode(o) for _, o in pairs])


def codec_for(config: ScanRunConfig, pairs: Sequence[Pair]) -> Codec | MLCCodec:
    if config.method == "mlc":
        return MLCCodec((w for c, _ in pairs for w in c), (a for _, o in pairs for a in o))
    return Codec.of(pairs)


def decode(
    model: SequenceModel,
    codec: Codec | MLCCodec,
    study: Sequence[Pair] | None,
    commands: Sequence[Sequence[str]],
    max_length: int,
    studies: Sequence[Sequence[Pair]] | None = None,
) -> list[tuple[tuple[str, ...], bool]]:
    """Greedy action sequences of ``commands`` and whether each ended with ``<eos>`` within ``max_length``.

    MLC reads ``studies[i]`` (or ``study``) in command i's source; meta seq2seq reads ``study`` in memory."""
    model.eval()
    if isinstance(codec, MLCCodec) and isinstance(model, TransformerSeq2Seq):
        per_command = studies or [study or ()] * len(commands)
        sources = [mlc_source(command, examples) for command, examples in zip(commands, per_command)]
        ids = model.greedy(pad([codec.inputs.encode(s, eos=False) for s in sources]), max_length)
        return [(codec.outputs.decode(row), 2 in row) for row in ids.tolist()]
    assert isinstance(codec, Codec)
    queries = codec.commands(commands)
    if isinstance(model, TransformerSeq2Seq):
        ids = model.greedy(queries, max_length)
    else:
        study_in, study_out = codec.pairs(study) if study else (None, None)
        ids = model.greedy(study_in, study_out, queries, max_length)
    return [(codec.outputs.decode(row), 2 in row) for row in ids.tolist()]


def loss_of_step(
    model: SequenceModel,
    config: ScanRunConfig,
    codec: Codec | MLCCodec,
    episodes: PrimitiveRemapEpisodes | None,
    train: Sequence[Pair],
    rng: random.Random,
) -> Tensor:
    """Meta seq2seq: the loss on one episode's queries; MLC: on a batch of one-query episodes, each with one
    of its study examples as a second query (the authors' support loss); the others: on training commands."""
    if isinstance(codec, MLCCodec) and episodes is not None and isinstance(model, TransformerSeq2Seq):
        drawn = [episodes.sample() for _ in range(config.queries)]
        return model.loss(*codec.batch([(e.study, e.queries + e.study[:1]) for e in drawn]))
    assert isinstance(codec, Codec)
    if episodes is not None and isinstance(model, MetaSeq2Seq):
        episode = episodes.sample()
        # the authors' support loss: study examples are queries too
        queries = episode.queries + episode.study if config.protocol == "lake2019" else episode.queries
        return model.loss(*codec.pairs(episode.study), *codec.pairs(queries))
    sources, targets = codec.pairs(rng.sample(list(train), config.queries))
    if isinstance(model, TransformerSeq2Seq):
        return model.loss(sources, targets)
    return model.loss(None, None, sources, targets)


def meta_episodes(config: ScanRunConfig, data_root: str | None, seed: int, keep: float = 0.0) -> PrimitiveRemapEpisodes:
    """Meta seq2seq's training episodes for ``config`` (``keep``: the share with SCAN's own meanings)."""
    meta, lake = META_PROTOCOLS[config.split], config.protocol == "lake2019"
    return PrimitiveRemapEpisodes(
        load_scan("all", data_root=data_root) if lake else load_scan(config.split, "train", data_root=data_root),
        primitives=meta.primitives,
        queries=config.queries,
        study=config.study if lake else None,
        rename_words=lake,
        extra=meta.extra,
        held_out=meta.held_out,
        keep=keep,
        seed=seed,
    )


def train_run(
    config: ScanRunConfig, run: Path, data_root: str | None = None, log: Callable[[str], Any] = print
) -> SequenceModel:
    """Train ``config`` in the folder ``run``, continuing from its checkpoint if there is one."""
    train, test = (load_scan(config.split, subset, data_root=data_root) for subset in ("train", "test"))
    meta = META_PROTOCOLS.get(config.split) if config.method == "meta-seq2seq" else None
    codec = codec_for(config, train + test + list(meta.study(meta.extra) if meta else ()))
    torch.manual_seed(config.seed)
    model = build_model(config, len(codec.inputs), len(codec.outputs))
    episodes = None
    if meta is not None:
        episodes = meta_episodes(config, data_root, config.seed)
    elif config.method == "mlc":  # the authors' SCAN episodes: the split's training commands, six words permuted
        episodes = PrimitiveRemapEpisodes(
            train, primitives=ACTION_WORDS, queries=1, study=config.study, keep=0.05, seed=config.seed
        )
    rng = episodes.random if episodes is not None else random.Random(config.seed)

    def learning_rate(step: int) -> float:
        return config.lr * 0.1 ** (step // config.lr_decay_every)

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(0))
    step, cpu_before = 0, 0.0
    checkpoint = run / "checkpoint.pt"
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        ours, theirs = asdict(config), dict(state["config"])
        if {**theirs, "steps": 0} != {**ours, "steps": 0}:
            changed = ", ".join(f"{k} {theirs[k]} -> {v}" for k, v in ours.items() if k != "steps" and theirs[k] != v)
            raise LtlError(f"{run} holds a run with other settings ({changed}); use another folder or its settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["episodes_random"])
        torch.set_rng_state(state["torch_random"])
        step, cpu_before = state["step"], state["cpu_seconds"]
        log(f"resuming at step {step}")
    started = time.process_time()
    while step < config.steps:
        model.train()
        loss = loss_of_step(model, config, codec, episodes, train, rng)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        optimizer.step()
        step += 1
        if step % config.lr_decay_every == 0:
            optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(step))
        if step % config.checkpoint_every == 0 or step == config.steps:
            run.mkdir(parents=True, exist_ok=True)
            cpu = cpu_before + time.process_time() - started
            save_tensors(
                {
                    "config": asdict(config),
                    "network_version": NETWORK_VERSION,
                    "inputs": list(codec.inputs.tokens),
                    "outputs": list(codec.outputs.tokens),
                    "longest_command": max(len(c) for c, _ in train),
                    "longest_output": max(len(o) for _, o in train + test),
                    "study": [list(map(list, pair)) for pair in evaluation_study(config, train, random.Random(0))],
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "episodes_random": rng.getstate(),
                    "torch_random": torch.get_rng_state(),
                    "step": step,
                    "cpu_seconds": cpu,
                },
                checkpoint,
            )
            log(f"step {step}: loss {loss.item():.4f}, {cpu:.0f} CPU s")
    return model


def load_checkpoint(path: Path) -> dict:
    """A run's checkpoint, refused with the fix if an earlier version of the LSTM network wrote it."""
    state = load_tensors(path, "SCAN checkpoint")
    method, version = state["config"]["method"], state.get("network_version", 1)
    if method in ("meta-seq2seq", "seq2seq") and version != NETWORK_VERSION:
        raise LtlError(
            f"{path} holds a {method} network of version {version}; this library builds version "
            f"{NETWORK_VERSION} (see learntolearn.compositional.meta_seq2seq): train the run again in a new folder"
        )
    # settings added since the checkpoint was written take the defaults that reproduce its network
    state["config"] = {f.name: f.default for f in fields(ScanRunConfig) if f.name not in state["config"]} | dict(
        state["config"]
    )
    return state


def evaluation_study(config: ScanRunConfig, train: Sequence[Pair], rng: random.Random) -> tuple[Pair, ...]:
    """MLC's study examples at test (the authors' protocol): ``study`` training commands, one of them
    replaced by the split's new primitive on its own unless drawn. Other methods: none."""
    if config.method != "mlc":
        return ()
    drawn = rng.sample(list(train), config.study)
    new = NEW_PRIMITIVE.get(config.split)
    if new is not None and new not in drawn:
        drawn[rng.randrange(len(drawn))] = new
    return tuple(drawn)


class ScanTranslator:
    """A trained SCAN run that turns commands into action sequences (greedy decoding).

    Meta seq2seq reads the primitives' meanings from study examples (the primitives alone, or "turn left"
    and "turn right" on around right): SCAN's own by default, or others given as ``meanings`` (e.g.
    ``{"jump": "I_WALK"}``), which it should follow without retraining. MLC
    reads the study examples stored with the run (training commands and the split's new primitive).
    """

    def __init__(self, run: str | Path, meanings: dict[str, str] | None = None) -> None:
        state = load_checkpoint(Path(run) / "checkpoint.pt")
        self.config = ScanRunConfig(**{f.name: state["config"][f.name] for f in fields(ScanRunConfig)})
        self.codec: Codec | MLCCodec = Codec(Vocabulary(tuple(state["inputs"])), Vocabulary(tuple(state["outputs"])))
        if self.config.method == "mlc":
            symbols = state["outputs"][3:]
            words = [t for t in state["inputs"][3:] if t not in symbols and t not in (SEPARATOR, ARROW)]
            self.codec = MLCCodec(words, symbols)
        self.longest_command, self.longest_output = state["longest_command"], state["longest_output"]
        self.steps, self.cpu_seconds = state["step"], state["cpu_seconds"]
        self.model = build_model(self.config, len(self.codec.inputs), len(self.codec.outputs))
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.study: tuple[Pair, ...] | None = tuple((tuple(c), tuple(o)) for c, o in state.get("study", [])) or None
        if self.config.method == "meta-seq2seq":
            meta = META_PROTOCOLS[self.config.split]
            meaning = dict(meta.primitives)
            for word, action in (meanings or {}).items():
                if word not in meaning or action not in meta.primitives.values():
                    raise DataError(
                        f"a meaning {word}={action}: words are {', '.join(meta.primitives)}, "
                        f"actions {', '.join(meta.primitives.values())}"
                    )
                meaning[word] = action
            self.study = meta.study(meaning)
        elif meanings:
            raise DataError(f"--meaning is for meta seq2seq runs; this run is {self.config.method}")

    def translate(self, commands: Sequence[str], max_length: int | None = None) -> list[tuple[tuple[str, ...], bool]]:
        """Each command's actions, and whether decoding ended before ``max_length`` (default: twice the
        longest output of the split). Unknown words and empty commands raise one error naming them."""
        words = [tuple(command.split()) for command in commands]
        for number, command in enumerate(words, 1):
            if not command:
                raise DataError(f"command {number} is empty; give words such as 'jump twice'")
        unknown = sorted({w for command in words for w in command if w not in self.codec.words})
        if unknown:
            raise DataError(
                f"unknown word(s) {', '.join(unknown)}; this model knows {', '.join(sorted(self.codec.words))}"
            )
        limit = max_length or 2 * self.longest_output
        decoded = decode(self.model, self.codec, self.study, words, limit + 1)  # room for <eos> after `limit`
        return [(actions[:limit], finished) for actions, finished in decoded]


def score_run(run: str | Path, data_root: str | None = None, batch: int = 256) -> dict:
    """Exact-match correctness of every test command of the run's split (SCAN's meanings), in file order.

    MLC reads, for test command i, study examples drawn by :func:`evaluation_study` with seed i."""
    translator = ScanTranslator(run)
    config = translator.config
    test = load_scan(config.split, "test", data_root=data_root)
    train = load_scan(config.split, "train", data_root=data_root) if config.method == "mlc" else []
    correct: list[bool] = []
    for start in range(0, len(test), batch):
        chunk = test[start : start + batch]
        studies = [evaluation_study(config, train, random.Random(start + i)) for i in range(len(chunk))]
        decoded = decode(
            translator.model,
            translator.codec,
            translator.study,
            [c for c, _ in chunk],
            max(len(o) for _, o in test) + 1,
            studies if config.method == "mlc" else None,
        )
        correct += [actions == output for (actions, _), (_, output) in zip(decoded, chunk)]
    return {
        "accuracy": sum(correct) / len(correct),
        "test_commands": len(test),
        "correct": [int(c) for c in correct],
        "steps": translator.steps,
        "cpu_seconds": round(translator.cpu_seconds, 1),
    }


def score_episodes(run: str | Path, data_root: str | None = None, episodes: int = 20, seed: int = 1_000_003) -> dict:
    """Meta seq2seq or MLC on held-out episodes of its training distribution (the authors' validation): the
    share of queries answered exactly, under permuted meanings and under SCAN's own. Queries are never among
    the episode's study examples; ``seed`` draws episodes other than training's."""
    translator = ScanTranslator(run)
    config = translator.config
    if config.method == "meta-seq2seq":

        def source_of(keep: float) -> PrimitiveRemapEpisodes:
            return meta_episodes(config, data_root, seed, keep)

    elif config.method == "mlc":
        train = load_scan(config.split, "train", data_root=data_root)

        def source_of(keep: float) -> PrimitiveRemapEpisodes:
            return PrimitiveRemapEpisodes(
                train, primitives=ACTION_WORDS, queries=1, study=config.study, keep=keep, seed=seed
            )

    else:
        raise LtlError(
            f"held-out episodes are meta seq2seq's and MLC's training distribution; this run is {config.method}"
        )
    scores = {}
    for name, keep in (("permuted_meanings", 0.0), ("scan_meanings", 1.0)):
        source = source_of(keep)
        correct = []
        for _ in range(episodes):
            episode = source.sample()
            commands = [c for c, _ in episode.queries]
            limit = 2 * translator.longest_output + 1
            decoded = decode(translator.model, translator.codec, episode.study, commands, limit)
            correct += [actions == output for (actions, _), (_, output) in zip(decoded, episode.queries)]
        scores[name] = sum(correct) / len(correct)
    return {**scores, "episodes": episodes, "queries": len(correct) // episodes, "seed": seed}


def preset(name: str, **overrides: Any) -> ScanRunConfig:
    if name not in PRESETS:
        raise LtlError(f"unknown SCAN preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
