"""Table cells shared by the photo and cross-domain reports: accuracy with its interval, paired difference."""

from __future__ import annotations


def accuracy_cells(row: dict) -> tuple[str, str]:
    """``mean ± 95% CI`` and the paired difference against raw pixels (``reference`` on their own row), in %."""
    difference = row["vs_raw_pixels"]
    versus = "reference" if difference is None else f"{100 * difference[0]:+.2f} ± {100 * difference[1]:.2f}"
    return f"{100 * row['accuracy']:.2f} ± {100 * row['ci95']:.2f}", versus
