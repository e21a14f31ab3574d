"""Files learntolearn reads cannot run code, and files it writes are atomic and honour the umask."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from learntolearn.cli.main import cli
from learntolearn.data.sampler import EpisodeSet
from learntolearn.errors import ModelFileError
from learntolearn.files import atomic_write, load_tensors, save_tensors, write_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
PACKAGE = Path(__file__).resolve().parents[2] / "learntolearn"


class Exploit:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def poison(path: Path, marker: Path) -> None:
    torch.save({"model": Exploit(marker), "state_dict": Exploit(marker), "step": 1}, path)


@pytest.fixture
def run(tmp_path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "run-protonet", folder)
    return folder


@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    support, query = tmp_path / "support", tmp_path / "query"
    for c in range(3):
        (support / f"class{c}").mkdir(parents=True)
        Image.new("L", (8, 8), color=80 * c).save(support / f"class{c}" / "a.png")
    query.mkdir()
    Image.new("L", (8, 8), color=0).save(query / "q.png")
    return support, query


def one_line_refusal(result, marker: Path) -> None:
    assert not marker.exists(), "the pickle ran its command"
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "could run code" in result.output and len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("command", ["eval", "export", "adapt", "resume"])
@pytest.mark.parametrize("poisoned", ["best.pt", "last.pt"])
def test_a_poisoned_checkpoint_is_refused_by_every_command(command, poisoned, run, images, tmp_path):
    marker = tmp_path / "pwned"
    if poisoned == "last.pt" and command != "resume":
        (run / "best.pt").unlink()  # commands that read a model use last.pt when there is no best.pt
    if poisoned == "best.pt" and command == "resume":
        poisoned = "last.pt"
    poison(run / poisoned, marker)
    support, query = images
    args = {
        "eval": ["eval", str(run), "--episodes", "4"],
        "export": ["export", str(run), "--out", str(tmp_path / "m.ltl")],
        "adapt": [
            "adapt",
            str(run),
            "--support",
            str(support),
            "--query",
            str(query),
            "--out",
            str(tmp_path / "p.csv"),
        ],
        "resume": ["train", "--resume", str(run), "--steps", "6"],
    }[command]
    one_line_refusal(CliRunner().invoke(cli, args), marker)


def test_a_poisoned_model_file_is_refused(images, tmp_path):
    marker, model = tmp_path / "pwned", tmp_path / "model.ltl"
    poison(model, marker)
    support, query = images
    result = CliRunner().invoke(
        cli, ["adapt", str(model), "--support", str(support), "--query", str(query), "--out", str(tmp_path / "p.csv")]
    )
    one_line_refusal(result, marker)


def test_poisoned_episode_sets_and_feature_caches_are_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "episodes.pt"
    poison(path, marker)
    with pytest.raises(ModelFileError, match="could run code"):
        EpisodeSet.load(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_clear_line(run):
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--steps", "6"])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read checkpoint"), result.output
    assert "truncated or not a torch file" in result.output and len(result.output.strip().splitlines()) == 1


def test_nothing_in_the_package_calls_torch_load_except_the_safe_loader():
    callers = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if re.search(r"torch\.load\(|weights_only\s*=\s*False", p.read_text()) and p.name != "files.py"
    ]
    assert callers == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_tensors({"x": torch.zeros(2)}, tmp_path / "a.pt")
        write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    for name in ("a.pt", "b.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert torch.equal(load_tensors(tmp_path / "a.pt")["x"], torch.zeros(2))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as f:
        f.write("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_writing_into_a_missing_folder_names_the_target(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write .*missing/out.csv: the folder .*missing does not exist"):
        write_text(tmp_path / "missing" / "out.csv", "x")


def test_compact_json_keeps_the_value_on_one_line(tmp_path):
    from learntolearn.files import write_json

    record = {"totals": {"greedy": list(range(1000))}, "commit": "abc"}
    write_json(tmp_path / "indented.json", record)
    write_json(tmp_path / "compact.json", record, compact=True)
    compact = (tmp_path / "compact.json").read_text()
    assert json.loads(compact) == json.loads((tmp_path / "indented.json").read_text()) == record
    assert compact.count("\n") == 1 and len(compact) * 2 < (tmp_path / "indented.json").stat().st_size
