"""What produced a result: the commit of the code, the command, the machine and the library versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from learntolearn.engine.memory import malloc_setting


def git_commit(directory: Path) -> str:
    """HEAD of the repository holding ``directory``, with ``-dirty`` when tracked code differs from it;
    "unknown" outside a repository.

    Recorded outputs (``results/``, ``benchmarks/results/``) and Markdown (the docs the tables are copied
    into) do not count as changes: a benchmark that appends its second record is still running the
    committed code.
    """
    outputs = [":(top)", ":(top,exclude)results", ":(top,exclude)benchmarks/results", ":(top,exclude,glob)**/*.md"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=directory
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *outputs],
            capture_output=True,
            text=True,
            check=True,
            cwd=directory,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def cpu_model() -> str:
    """The processor's marketing name (Linux's /proc/cpuinfo), "unknown" elsewhere: rates and even speed-up
    ratios differ between CPUs of one architecture."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def provenance() -> dict[str, Any]:
    """Commit of this code (see :func:`git_commit`), command, machine and library versions."""
    return {
        "commit": git_commit(Path(__file__).parent),
        "command": " ".join(sys.argv),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector instructions PyTorch's kernels use
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "malloc": malloc_setting(),
    }
