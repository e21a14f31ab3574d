"""Downloading archives with a checksum check, atomically: a failed download leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from learntolearn.data.roots import describe_root_choice, resolve_data_root
from learntolearn.errors import DataError
from learntolearn.files import atomic_write


@dataclass(frozen=True)
class RemoteFile:
    """A file published at ``url`` whose bytes hash to ``digest`` under ``algorithm``."""

    filename: str
    url: str
    digest: str
    algorithm: str = "sha256"
    size: int | None = None
    #: ``digest`` is of the gzip file's decompressed bytes (for files whose mirrors recompress them)
    gunzipped: bool = False


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(remote: RemoteFile, folder: Path, *, progress: bool = True) -> Path:
    """Fetch ``remote`` into ``folder``; the file appears only once its checksum matched.

    The bytes go to a temporary file in the same folder, are hashed while they stream, and are
    renamed into place on success. On a mismatch or an interrupted transfer the temporary file is
    removed and :class:`DataError` names the expected and actual checksums.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    h = hashlib.new(remote.algorithm)
    gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if remote.gunzipped else None
    with atomic_write(target, "wb", suffix=".part") as out, urllib.request.urlopen(remote.url, timeout=60) as response:
        total = remote.size or int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=remote.filename, disable=not progress) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                h.update(block if gunzip is None else gunzip.decompress(block))
                bar.update(len(block))
        if h.hexdigest() != remote.digest:
            raise DataError(
                f"checksum mismatch for {remote.filename} downloaded from {remote.url}: expected "
                f"{remote.algorithm} {remote.digest}{' (of the decompressed bytes)' if gunzip else ''}, got {h.hexdigest()}. The file was not kept; "
                f"retry, or place a copy of the official archive in {folder} yourself."
            )
    return target


def fetch_file(
    remote: RemoteFile, data_root: str | os.PathLike[str] | None, folder_name: str, download_missing: bool, title: str
) -> Path:
    """Path of ``remote`` under ``<root>/<folder_name>``, downloading it (checksum-verified) when allowed and absent."""
    folder = resolve_data_root(data_root) / folder_name
    path = folder / remote.filename
    if path.exists():
        return path
    if not download_missing:
        raise DataError(
            f"{title} not found: looked for {path} (data root from {describe_root_choice(data_root)}). "
            f"Put the official {remote.filename} there, point --data-root or $LTL_DATA at a folder holding "
            f"{folder_name}/{remote.filename}, or allow the download from {remote.url}."
        )
    try:
        return download(remote, folder)
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            f"{title} not found at {path} (data root from {describe_root_choice(data_root)}) and the "
            f"download from {remote.url} failed ({err}). Download it by hand into {folder}, or point "
            f"--data-root or $LTL_DATA at a folder holding {folder_name}/{remote.filename}."
        ) from err
