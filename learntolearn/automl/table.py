"""A user's classification table (CSV) read for meta-learning: checked, cleaned with every change reported, and
described by meta-features that follow OpenML's definitions (so that it can be compared with LCDB's data sets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learntolearn.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

#: the largest CSV read into memory unless the caller allows more
DEFAULT_MAX_BYTES = 512 * 1024**2
MAX_CLASSES = 100
#: a string column with more distinct values than this share of its rows, and long values, is free text
TEXT_DISTINCT_SHARE, TEXT_MEAN_LENGTH = 0.5, 20

#: OpenML's data qualities that :func:`meta_features` computes. As on OpenML, the target counts as a
#: (symbolic) feature in the feature counts and in Dimensionality.
META_FEATURES = (
    "NumberOfInstances",
    "NumberOfFeatures",
    "NumberOfClasses",
    "NumberOfNumericFeatures",
    "NumberOfSymbolicFeatures",
    "NumberOfBinaryFeatures",
    "PercentageOfNumericFeatures",
    "PercentageOfSymbolicFeatures",
    "PercentageOfBinaryFeatures",
    "Dimensionality",
    "MajorityClassSize",
    "MinorityClassSize",
    "MinorityClassPercentage",
    "ClassEntropy",
    "NumberOfMissingValues",
    "NumberOfInstancesWithMissingValues",
    "PercentageOfMissingValues",
    "PercentageOfInstancesWithMissingValues",
)


@dataclass
class Table:
    """Feature columns (numbers, or strings for categories; missing values allowed), the class labels (strings),
    and what was changed on the way in."""

    features: pd.DataFrame
    target: pd.Series
    name: str
    notes: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> list[str]:
        return [c for c in self.features.columns if self.features[c].dtype.kind in "fiub"]

    @property
    def categorical(self) -> list[str]:
        return [c for c in self.features.columns if c not in self.numeric]


def read_table(path: str | os.PathLike[str], target: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Table:
    """Read a CSV with a header row for classification by ``target``; one clear error for what cannot work."""
    import pandas as pd  # pandas: the well-kept CSV reader (types, quoting, missing values)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(
            f"{path} is {size / 1024**2:,.0f} MiB, more than the {max_bytes / 1024**2:,.0f} MiB read into memory; "
            "sample its rows (e.g. `shuf -n 100000`) or raise the limit with --max-megabytes"
        )
    try:
        frame = pd.read_csv(path, skipinitialspace=True, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a readable CSV with a header row: {err}") from err
    return table_from_frame(frame, target, path.stem, where=str(path))


def table_from_frame(frame: pd.DataFrame, target: str, name: str, where: str = "") -> Table:
    """A :class:`Table` from a data frame, as :func:`read_table` makes one from a file (``frame`` is not changed)."""
    import pandas as pd

    where = where or name
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:30])) + (" ..." if len(frame.columns) > 30 else "")
        raise DataError(f"{where} has no column {target!r}; its columns are: {columns}")
    notes: list[str] = []
    frame = frame.copy()
    labels = frame.pop(target)
    missing = labels.isna()
    if missing.all():
        raise DataError(f"column {target!r} of {where} is empty")
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} rows without a {target!r} value")
        frame, labels = frame[~missing].reset_index(drop=True), labels[~missing].reset_index(drop=True)
    check_classification_target(labels, target)
    labels = labels.astype(str)
    features = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        kept = clean_column(frame[column], str(column), notes)
        if kept is not None:
            features[column] = kept
    if features.shape[1] == 0:
        raise DataError(f"{where}: no usable feature column besides {target!r} (see: {'; '.join(notes) or 'none'})")
    return Table(features, labels, name, notes)


def check_classification_target(labels: pd.Series, name: str) -> None:
    classes = labels.nunique()
    if classes < 2:
        raise DataError(f"column {name!r} has a single value ({labels.iloc[0]!r}): nothing to classify")
    if labels.dtype.kind == "f" and not np.all(np.mod(labels.to_numpy(), 1) == 0) and classes > MAX_CLASSES / 5:
        raise DataError(
            f"column {name!r} holds {classes} distinct real numbers: that is a regression target, and only "
            "classification is supported; bin it into classes first if that is what you want"
        )
    if classes > MAX_CLASSES:
        raise DataError(
            f"column {name!r} has {classes} distinct values; more than {MAX_CLASSES} classes is not supported "
            "(is it an identifier or a continuous quantity?)"
        )
    if labels.value_counts().min() < 2:
        rare = labels.value_counts()
        raise DataError(
            f"column {name!r}: class(es) {', '.join(map(repr, rare[rare < 2].index[:5]))} occur only once; "
            "cross-validation needs at least two rows per class: merge or drop them"
        )


def clean_column(column: pd.Series, name: str, notes: list[str]) -> pd.Series | None:
    """The column as numbers or category strings, or None (with a note) when it cannot be a feature."""
    import pandas as pd

    present = column.dropna()
    if present.empty:
        notes.append(f"dropped {name!r}: empty")
        return None
    if present.nunique() == 1:
        notes.append(f"dropped {name!r}: constant")
        return None
    if column.dtype.kind in "iufb":
        if looks_like_row_numbers(present):
            notes.append(f"dropped {name!r}: a row identifier (distinct whole numbers rising row by row)")
            return None
        return column.astype(float)
    text = present.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() >= 0.95:  # mixed: mostly numbers with a few stray strings
        stray = int(numbers.isna().sum())
        notes.append(f"{name!r}: {stray} non-numeric values in a numeric column read as missing")
        return pd.to_numeric(column.astype(str).where(column.notna()), errors="coerce")
    if text.nunique() == len(text):
        notes.append(f"dropped {name!r}: every value distinct (an identifier or free text)")
        return None
    if text.nunique() > TEXT_DISTINCT_SHARE * len(text) and text.str.len().mean() > TEXT_MEAN_LENGTH:
        notes.append(f"dropped {name!r}: free text (use `ltl adapt` for texts)")
        return None
    return column.astype(str).where(column.notna())


def looks_like_row_numbers(values: pd.Series) -> bool:
    """Distinct whole numbers that rise (or fall) from row to row: a row number or record id, not a feature."""
    numbers = values.to_numpy(dtype=float)
    steps = np.diff(numbers)
    return bool(len(numbers) > 2 and np.all(np.mod(numbers, 1) == 0) and (np.all(steps > 0) or np.all(steps < 0)))


def meta_features(table: Table) -> dict[str, float]:
    """:data:`META_FEATURES` of the table, by OpenML's definitions (the target is one of the features)."""
    rows = len(table.target)
    counts = table.target.value_counts().to_numpy()
    shares = counts / rows
    numeric, symbolic = len(table.numeric), len(table.categorical) + 1
    binary = sum(table.features[c].nunique() == 2 for c in table.features.columns) + (len(counts) == 2)
    features = numeric + symbolic
    missing = table.features.isna()
    values = {
        "NumberOfInstances": rows,
        "NumberOfFeatures": features,
        "NumberOfClasses": len(counts),
        "NumberOfNumericFeatures": numeric,
        "NumberOfSymbolicFeatures": symbolic,
        "NumberOfBinaryFeatures": binary,
        "PercentageOfNumericFeatures": 100 * numeric / features,
        "PercentageOfSymbolicFeatures": 100 * symbolic / features,
        "PercentageOfBinaryFeatures": 100 * binary / features,
        "Dimensionality": features / rows,
        "MajorityClassSize": counts.max(),
        "MinorityClassSize": counts.min(),
        "MinorityClassPercentage": 100 * counts.min() / rows,
        "ClassEntropy": float(-(shares * np.log2(shares)).sum()),
        "NumberOfMissingValues": int(missing.to_numpy().sum()),
        "NumberOfInstancesWithMissingValues": int(missing.any(axis=1).sum()),
        "PercentageOfMissingValues": 100 * missing.to_numpy().sum() / (rows * features),
        "PercentageOfInstancesWithMissingValues": 100 * missing.any(axis=1).sum() / rows,
    }
    return {name: float(values[name]) for name in META_FEATURES}


class TableColumns:
    """The first step of a saved pipeline: picks the columns :func:`read_table` kept from raw rows and reads
    them as it did (stray strings in a numeric column become missing), so that the pipeline takes the file's
    rows as they are. A scikit-learn transformer (``fit``/``transform``; cloned through ``get_params``)."""

    def __init__(self, numeric: list[str] | tuple[str, ...] = (), categorical: list[str] | tuple[str, ...] = ()):
        self.numeric, self.categorical = numeric, categorical

    def get_params(self, deep: bool = True) -> dict[str, object]:
        return {"numeric": self.numeric, "categorical": self.categorical}

    def set_params(self, **parameters: object) -> TableColumns:
        for name, value in parameters.items():
            setattr(self, name, value)
        return self

    def fit(self, rows: pd.DataFrame, labels: object = None) -> TableColumns:
        return self

    def transform(self, rows: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        missing = [c for c in (*self.numeric, *self.categorical) if c not in rows.columns]
        if missing:
            raise DataError(f"rows lack the column(s) {', '.join(map(repr, missing))} the model was trained with")
        out = pd.DataFrame(index=rows.index)
        for column in self.numeric:
            out[column] = pd.to_numeric(rows[column], errors="coerce").astype(float)
        for column in self.categorical:
            out[column] = rows[column].astype(str).where(rows[column].notna())
        return out
