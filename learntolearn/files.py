"""Every file learntolearn writes is written atomically, and every tensor file it reads is read safely.

``atomic_write`` writes to a temporary file in the target's folder, flushes it to disk and renames it
over the target, so a crash never leaves a truncated file; the result gets the permissions the umask
gives a new file (``tempfile.mkstemp`` alone would leave it 0600). ``load_tensors`` reads ``torch.save``
files with ``weights_only=True``: a pickle cannot run code, so a run folder or model file received
from someone else is safe to open.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

from learntolearn.errors import LockedError, LtlError, ModelFileError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", *, suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``, on error it is removed.

    ``mode`` is ``"w"`` (UTF-8 text, no newline translation) or ``"wb"``. A missing folder or an
    unwritable one raises ``FileNotFoundError`` / ``PermissionError`` naming ``path``, not the temporary name.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes with mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist") from None
    except PermissionError:
        raise PermissionError(f"cannot write {path}: no permission to create files in {path.parent}") from None
    tmp = Path(tmp_name)
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, encoding="utf-8" if text else None, newline="" if text else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail now, naming ``path``, if a file could not be written there later (missing or unwritable folder)."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: no permission to create files in {folder}")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike[str], value: Any, compact: bool = False) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically (``compact``: without whitespace, for records of
    many per-task numbers, which indented JSON spreads one per line)."""
    text = json.dumps(value, separators=(",", ":")) if compact else json.dumps(value, indent=2)
    write_text(path, text + "\n")


def spreadsheet_text(cell: str) -> str:
    """``cell`` made safe to open in a spreadsheet: text starting like a formula (``= + - @``, tab, carriage
    return), e.g. a file or class name someone else chose, gets a leading apostrophe so it shows as text."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def save_tensors(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def load_tensors(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """A ``torch.save`` file of tensors, numbers, strings and containers, read without running any code.

    A file that holds anything else (a pickle that would import or call code), or that is truncated or
    not a ``torch.save`` file, raises :class:`ModelFileError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            reason = (
                "it holds Python objects other than tensors and plain values, which could run code when "
                "loaded; learntolearn never writes such files, so it was refused"
            )
        else:
            reason = f"it is truncated or not a torch file ({err.__class__.__name__}: {str(err).splitlines()[0][:200]})"
        raise ModelFileError(f"cannot read {what} {path}: {reason}") from err


class FolderLock:
    """An exclusive lock on a folder, held while the object lives: a second holder is refused, naming the first.

    It is an ``flock`` on ``folder/.lock``, released by the operating system when the process ends, so a
    killed run leaves no stale lock behind.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "run folder") -> None:
        import fcntl

        self.path = Path(folder) / ".lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise LockedError(
                f"{what} {self.path.parent} is in use by process {holder}; wait for it to end or choose another folder"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        self._file.close()

    def __del__(self) -> None:  # the lock lives as long as its holder
        if hasattr(self, "_file") and not self._file.closed:
            self._file.close()

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def folder_in_use(folder: str | os.PathLike[str]) -> str | None:
    """The process holding ``folder``'s :class:`FolderLock` (as written in the lock file), or None if it is free."""
    import fcntl

    path = Path(folder) / ".lock"
    if not path.exists():
        return None
    with open(path) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return file.read().strip() or "unknown"
    return None


def matching_checkpoint(
    run: Path,
    config: dict[str, Any],
    what: str,
    length: str = "iterations",
    older_defaults: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The run folder's ``checkpoint.pt``, if any, after checking it was made with ``config`` (its ``length``
    setting aside, so a run can be extended; a setting added to the code after the checkpoint was written
    counts as its value in ``older_defaults``, else as its current value)."""
    checkpoint = run / "checkpoint.pt"
    if not checkpoint.exists():
        return None
    state = load_tensors(checkpoint, what)
    theirs = {**config, **(older_defaults or {}), **state["config"]}
    if {**theirs, length: 0} != {**config, length: 0}:
        changed = ", ".join(
            f"{k} {theirs.get(k)} -> {v}" for k, v in config.items() if k != length and theirs.get(k) != v
        )
        raise LtlError(f"{run} holds a run with other settings ({changed}); use another folder or its settings")
    return state
