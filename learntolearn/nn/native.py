"""C kernels compiled on first use with the system C compiler and loaded through ``ctypes``.

Each source in ``kernels/`` is built once per CPU instruction set and compiler into
``$XDG_CACHE_HOME/learntolearn/kernels`` (written atomically, so concurrent processes never load a half-written
library). Where that cannot happen (``LTL_FUSED_KERNELS=0``, no compiler, a failed build, an unwritable cache)
:func:`build` returns None and callers run PyTorch's operators instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from learntolearn.data.roots import default_cache_root

log = logging.getLogger(__name__)
KERNELS = Path(__file__).with_name("kernels")
#: compiler flags per vector instruction set PyTorch reports for this CPU
VECTOR_FLAGS = {"AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma"], "AVX2": ["-mavx2", "-mfma"]}

float_p = ctypes.POINTER(ctypes.c_float)
double_p = ctypes.POINTER(ctypes.c_double)
i64_p = ctypes.POINTER(ctypes.c_int64)


def build(source_name: str, signatures: dict[str, list]) -> ctypes.CDLL | None:
    """``kernels/<source_name>`` compiled and loaded with ``signatures`` (function name -> argument types), or None."""
    if os.environ.get("LTL_FUSED_KERNELS", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler found: %s's kernels are unavailable, PyTorch's operators run", source_name)
        return None
    try:
        return _build_and_load(compiler, KERNELS / source_name, signatures)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the kernels of %s are unavailable (%s); using PyTorch's operators", source_name, error)
        return None


def _build_and_load(compiler: str, source: Path, signatures: dict[str, list]) -> ctypes.CDLL | None:
    flags = ["-O3", "-fopenmp", "-fPIC", "-shared", *VECTOR_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])]
    key = hashlib.sha256(source.read_bytes() + " ".join([compiler, platform.machine(), *flags]).encode()).hexdigest()
    library = default_cache_root() / "kernels" / f"{source.stem}-{key[:16]}.so"
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=library.parent) as work:
            built = Path(work) / library.name
            result = subprocess.run(
                [compiler, *flags, str(source), "-o", str(built), "-lm"], capture_output=True, timeout=300
            )
            if result.returncode != 0:
                log.warning("could not compile %s (%s); using PyTorch's operators", source.name, result.stderr[-500:])
                return None
            os.replace(built, library)  # atomic: another process never loads a half-written file
    lib = ctypes.CDLL(str(library))
    for name, arguments in signatures.items():
        getattr(lib, name).argtypes = arguments
        getattr(lib, name).restype = None
    return lib


def pointer(t: torch.Tensor, kind=float_p):
    """``t``'s data as a C pointer of ``kind``."""
    return ctypes.cast(t.data_ptr(), kind)
