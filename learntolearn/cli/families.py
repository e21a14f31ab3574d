"""The command families beside ``ltl train``: their presets and run folders, so that ``ltl train``, ``ltl eval`` and
``ltl presets`` can name the command a user needs when given one of theirs.

Each of ``ltl rl``, ``ltl continual``, ``ltl scan`` and ``ltl federated`` trains presets of its own into a run folder
holding one ``checkpoint.pt`` with its config (and no ``config.json``, which ``ltl train`` runs have).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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
    configs: tuple[type, ...]  # the dataclasses its checkpoints' configs are written from

    def wrote(self, config: dict) -> bool:
        """Whether a checkpoint's config is one of this family's (an older one may lack later settings)."""
        return any(set(config) <= {f.name for f in fields(kind)} for kind in self.configs)


FAMILIES = (
    Family(
        "ltl rl",
        "train",
        "eval",
        frozenset({*rl2_runs.PRESETS, *maml_rl_runs.PRESETS}),
        (rl2_runs.RL2RunConfig, maml_rl_runs.MAMLRLRunConfig),
    ),
    Family("ltl continual", "train", "eval", frozenset(continual_runs.PRESETS), (continual_runs.ContinualRunConfig,)),
    Family("ltl scan", "train", "eval", frozenset(scan_runs.PRESETS), (scan_runs.ScanRunConfig,)),
    Family("ltl federated", "run", "status", frozenset(federated_runs.PRESETS), (federated_runs.FederatedConfig,)),
)


def family_of_preset(name: str) -> Family | None:
    return next((family for family in FAMILIES if name in family.presets), None)


def family_of_run(run: Path) -> tuple[Family, str | None] | None:
    """The family whose ``checkpoint.pt`` is in the run folder, and the run's name where its config keeps one (None
    if no family wrote it)."""
    checkpoint = Path(run) / "checkpoint.pt"
    if not checkpoint.is_file():
        return None
    try:
        config = load_tensors(checkpoint).get("config")
    except ModelFileError:
        return None
    if not isinstance(config, dict):
        return None
    name = config.get("name") if isinstance(config.get("name"), str) else None
    family = (family_of_preset(name) if name else None) or next((f for f in FAMILIES if f.wrote(config)), None)
    return None if family is None else (family, name)


def other_family_run(run: Path) -> str | None:
    """For a run folder another command family wrote: which, and the commands that read and continue it."""
    run = Path(run)
    if (run / "config.json").exists() or not (run / "checkpoint.pt").is_file():
        return None
    found = family_of_run(run)
    if found is None:
        commands = ", ".join(f"`{f.command}`" for f in FAMILIES)
        return f"{run} holds a checkpoint.pt none of {commands} wrote"
    family, name = found
    of = f" of {name}" if name else ""
    described = f"{run} is a `{family.command}` run{of}: read it with `{family.command} {family.score} {run}`"
    if name in family.presets:
        described += f" and continue it with `{family.command} {family.train} {name} --run {run}`"
    return described


def check_run_of(run: Path, command: str) -> None:
    """Raise :class:`ModelFileError` naming the right command if ``run`` holds a run of another family than
    ``command``'s (``ltl train``'s, or another preset family's)."""
    run = Path(run)
    if (run / "config.json").exists():
        raise ModelFileError(
            f"{run} is an `ltl train` run: read it with `ltl eval {run}` and continue it with `ltl train --resume {run}`"
        )
    found = family_of_run(run)
    if (run / "checkpoint.pt").is_file() and (found is None or found[0].command != command):
        raise ModelFileError(other_family_run(run) or "")
