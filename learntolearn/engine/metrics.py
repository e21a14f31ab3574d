"""Run metrics: JSON lines in ``metrics.jsonl`` always, TensorBoard event files when TensorBoard is installed."""

from __future__ import annotations

import json
import math
from pathlib import Path


def tensorboard_writer(log_dir: Path, purge_step: int | None):
    """A ``SummaryWriter`` if the optional ``tensorboard`` package is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


class MetricsLog:
    """Appends one JSON object per event to ``run_dir/metrics.jsonl`` and mirrors its numbers to TensorBoard.

    ``resume_step`` continues an existing log: lines (and TensorBoard events) after that step are
    dropped, since the run will redo those steps from its last checkpoint.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")
        else:
            kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.writer = tensorboard_writer(run_dir / "tensorboard", resume_step) if tensorboard else None

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if (
                    key != "step"
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                ):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        """Flush and close the TensorBoard file; later records still go to the JSONL file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no metrics.jsonl)")
    return [json.loads(line) for line in path.read_text().splitlines() if line]
