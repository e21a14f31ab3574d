"""The command families beside ``ltl train``: their presets and run folders, so that ``ltl train``, ``ltl eval`` and
``ltl presets`` can name the command a user needs when given one of theirs.

Each of ``ltl rl``, ``ltl continual``, ``ltl scan`` and ``ltl federated`` trains presets of its own into a run folder
holding one ``checkpoint.pt`` with its config (and no ``config.json``, which ``ltl train`` runs have).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learntolearn.compositional import scan_runs
from learntolearn.continual import runs as continual_runs
from learntolearn.errors import ModelFileError
from learntolearn.federated import runs as federated_runs
from learntolearn.files import load_tensors
from learntolearn.rl import maml_rl_runs
from learntolearn.rl import runs as rl2_runs


@dataclass(frozen=True)
class Family:
    command: str  # e.g. "ltl rl"
    train: str  # its subcommand that trains (and continues) a preset's run
    score: str  # its subcommand that reads a run folder
    presets: frozenset[str]


FAMILIES = (
    Family("ltl rl", "train", "eval", frozenset({*rl2_runs.PRESETS, *maml_rl_runs.PRESETS})),
    Family("ltl continual", "train", "eval", frozenset(continual_runs.PRESETS)),
    Family("ltl scan", "train", "eval", frozenset(scan_runs.PRESETS)),
    Family("ltl federated", "run", "status", frozenset(federated_runs.PRESETS)),
)


def family_of_preset(name: str) -> Family | None:
    return next((family for family in FAMILIES if name in family.presets), None)


def other_family_run(run: Path) -> str | None:
    """For a run folder another command family wrote: which, and the commands that read and continue it."""
    checkpoint = Path(run) / "checkpoint.pt"
    if (Path(run) / "config.json").exists() or not checkpoint.is_file():
        return None
    try:
        config = load_tensors(checkpoint).get("config")
    except ModelFileError:
        return None
    name = config.get("name") if isinstance(config, dict) else None
    family = family_of_preset(name) if isinstance(name, str) else None
    if family is None:
        commands = ", ".join(f"`{f.command}`" for f in FAMILIES)
        return f"{run} holds a checkpoint.pt, which {commands} write: read it with the command that wrote it"
    return (
        f"{run} is a `{family.command}` run of {name}: read it with `{family.command} {family.score} {run}` "
        f"and continue it with `{family.command} {family.train} {name} --run {run}`"
    )
