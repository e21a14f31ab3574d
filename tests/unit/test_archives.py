"""Checksum-verified, atomic downloads: from a file:// URL and from a local HTTP server."""

import hashlib
import http.server
import threading
from functools import partial

import pytest

from learntolearn.data.archives import RemoteFile, download
from learntolearn.data.roots import ENV_VAR, resolve_data_root
from learntolearn.errors import DataError

PAYLOAD = b"official archive bytes" * 1000


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on loopback, like the official host."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.zip").write_bytes(PAYLOAD)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/a.zip", site
    server.shutdown()
    server.server_close()


def test_download_over_http_keeps_a_file_with_the_right_checksum(served, tmp_path):
    url, _ = served
    target = download(RemoteFile("a.zip", url, hashlib.sha256(PAYLOAD).hexdigest()), tmp_path / "cache", progress=False)
    assert target.read_bytes() == PAYLOAD
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["a.zip"]


def test_download_from_file_url_supports_md5(tmp_path):
    source = tmp_path / "a.zip"
    source.write_bytes(PAYLOAD)
    remote = RemoteFile("a.zip", source.as_uri(), hashlib.md5(PAYLOAD).hexdigest(), "md5")
    assert download(remote, tmp_path / "cache", progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_raises_and_leaves_no_partial_file(served, tmp_path):
    url, _ = served
    with pytest.raises(DataError, match="checksum mismatch for a.zip.*expected sha256 0000.*The file was not kept"):
        download(RemoteFile("a.zip", url, "0000"), tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_remote_file_raises_and_leaves_nothing(served, tmp_path):
    url, _ = served
    with pytest.raises(OSError):
        download(RemoteFile("b.zip", url.replace("a.zip", "b.zip"), "0"), tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_root() == tmp_path / "xdg" / "learntolearn"
