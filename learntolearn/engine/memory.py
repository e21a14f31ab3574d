"""Keep freed tensor buffers in the process instead of handing them back to the operating system.

PyTorch's CPU tensors come from ``malloc``. glibc serves every allocation above its mmap threshold
(at most 32 MB) with fresh pages from the kernel and unmaps them on free, so a training step whose
activations are tens of MB each (a conv4 over a 400-image episode) page-faults
through all of them again on every step (``tests/unit/test_memory.py`` counts the faults), which
slows every implementation in ``benchmarks/protonet_peers.py``. :func:`reuse_freed_memory` raises
the mmap and trim thresholds with ``mallopt`` so large buffers are kept and reused; the process's
resident memory then stays at its peak instead of shrinking between steps. ``ltl`` calls it (a library
should not change the allocator of the process that imports it, so the Trainer does not); set
``LTL_REUSE_FREED_MEMORY=0`` to keep the C library's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: buffers up to this size come from the reusable heap; free memory above it at the heap's top is trimmed
THRESHOLD_BYTES = 2**31 - 1
_reusing = False


def reuse_freed_memory() -> bool:
    """Make glibc keep and reuse freed large buffers for the rest of the process; whether it took effect.

    A no-op returning False on C libraries other than glibc (macOS, musl) or when the environment sets
    ``LTL_REUSE_FREED_MEMORY=0``.
    """
    if os.environ.get("LTL_REUSE_FREED_MEMORY", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    global _reusing
    _reusing = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
    return _reusing


def malloc_setting() -> str:
    """``"reuse-freed"`` once :func:`reuse_freed_memory` took effect in this process, else ``"default"``."""
    return "reuse-freed" if _reusing else "default"
