"""What ``ltl datasets`` reports: for each data set, where its files are and whether they check out."""

from __future__ import annotations

from pathlib import Path

from learntolearn.data.omniglot import ARCHIVES, LAKE_RUNS, index_archive
from learntolearn.errors import DataError


def dataset_status(name: str, root: Path) -> list[str]:
    if name == "synthetic":
        return ["generated in code; always available"]
    lines = []
    for _key, spec in ARCHIVES.items():
        path = root / "omniglot" / spec.remote.filename
        if not path.exists():
            lines.append(f"{spec.remote.filename}: missing at {path} (downloaded on first use from {spec.remote.url})")
            continue
        try:
            index_archive(path, spec)
            lines.append(f"{spec.remote.filename}: present, verified ({spec.alphabets} alphabets, "
                         f"{spec.characters} characters, {spec.images} images) at {path}")
        except DataError as err:
            lines.append(f"{spec.remote.filename}: PRESENT BUT INVALID: {err}")
    runs = root / "omniglot" / LAKE_RUNS.filename
    lines.append(f"{LAKE_RUNS.filename}: " + (f"present at {runs}" if runs.exists() else f"missing at {runs}"))
    return lines
