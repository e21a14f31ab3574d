"""`ltl reproduce`: a table of runs scored on shared fixed episodes, with paired differences and provenance."""

import json

import pytest
from click.testing import CliRunner

from learntolearn.cli.main import cli
from learntolearn.data.sampler import EPISODE_SET_VERSION, TEST_EPISODE_SEED
from learntolearn.experiments import reproduce as harness
from learntolearn.experiments.presets import get_preset


def test_missing_runs_are_listed_as_not_run(tmp_path):
    rows = harness.reproduce("omniglot", tmp_path, episodes=10, progress=False)
    assert [r["status"] for r in rows] == ["not run"] * len(harness.TABLES.get("omniglot"))
    maml = next(r for r in rows if r["preset"] == "maml-omniglot-5w1s")
    assert maml["paper"] == 98.7 and maml["paper_ci"] == 0.4
    assert "| maml-omniglot-5w1s | 5-way 1-shot, 1 queries | not run | 98.7 ± 0.4 |" in harness.to_markdown(
        "omniglot", rows
    )


def test_the_smoke_table_trains_scores_pairs_and_caches(tmp_path, monkeypatch):
    result = CliRunner().invoke(
        cli,
        [
            "reproduce",
            "smoke",
            "--runs",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "results"),
            "--train-missing",
            "--episodes",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    table = json.loads((tmp_path / "results" / "smoke.json").read_text())
    proto5, proto3, anil = table["rows"]
    assert proto5["setting"] == "5-way 1-shot, 3 queries" and proto3["setting"] == "3-way 1-shot, 3 queries"
    assert proto5["status"] == "complete" and proto5["steps"] == 60 and proto5["episodes"] == 40
    assert proto5["ours"] > 50, "ProtoNets learns the glyphs well above the 20% of chance in 60 steps"
    assert "paired" not in proto5 and "paired" not in proto3, "the first row of each setting is its reference"
    assert anil["paired"]["versus"] == "protonet-synthetic-smoke"
    assert anil["paired"]["difference"] == pytest.approx(anil["ours"] - proto5["ours"], abs=0.011)
    assert (
        proto5["command"] and len(proto5["commit"]) >= 7 and proto5["hardware"].endswith(("x86_64", "aarch64", "arm64"))
    )
    markdown = (tmp_path / "results" / "smoke.md").read_text()
    assert (
        "| anil-synthetic-smoke | 5-way 1-shot, 3 queries |" in markdown and "vs protonet-synthetic-smoke" in markdown
    )
    assert proto5["episode_set"] == {"seed": TEST_EPISODE_SEED, "version": EPISODE_SET_VERSION}
    assert f"40 episodes, test seed {TEST_EPISODE_SEED}, sampler v{EPISODE_SET_VERSION})" in markdown
    assert "no stored per-episode scores" not in markdown and "not recomputable" not in markdown

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a cached evaluation was recomputed")

    monkeypatch.setattr(harness, "evaluate", no_evaluation)
    again = harness.reproduce("smoke", tmp_path / "runs", episodes=40, progress=False)
    assert [r["ours"] for r in again] == [r["ours"] for r in table["rows"]]
    # an algorithm whose evaluation changed is rescored; the others keep their cached scores
    from learntolearn.algorithms import ANIL

    monkeypatch.setattr(ANIL, "evaluation_version", 2)
    with pytest.raises(AssertionError, match="recomputed"):
        harness.reproduce("smoke", tmp_path / "runs", episodes=40, progress=False)
    monkeypatch.setattr(ANIL, "evaluation_version", 1)
    # the cache is keyed by the checkpoint's content: a copy with new modification times is not rescored
    import shutil

    shutil.copytree(tmp_path / "runs", tmp_path / "copied", copy_function=shutil.copy)
    copied = harness.reproduce("smoke", tmp_path / "copied", episodes=40, progress=False)
    assert [r["ours"] for r in copied] == [r["ours"] for r in table["rows"]]
    # an entry keyed by modification time (as earlier versions wrote it) is read and re-keyed by content
    cache_path = tmp_path / "runs" / "protonet-synthetic-smoke" / "table_evaluations.json"
    by_content = json.loads(cache_path.read_text())
    assert len(by_content) == 2, "the run's two rows (5-way and 3-way)"
    by_time = {}
    for key, scores in by_content.items():
        name, _, setting = key.split(":", 2)
        checkpoint = (tmp_path / "runs" / "protonet-synthetic-smoke" / name).stat()
        by_time[f"{name}:{checkpoint.st_mtime_ns}:{checkpoint.st_size}:{setting}"] = scores
    cache_path.write_text(json.dumps(by_time))
    again = harness.reproduce("smoke", tmp_path / "runs", episodes=40, progress=False)
    assert [r["ours"] for r in again] == [r["ours"] for r in table["rows"]]
    assert json.loads(cache_path.read_text()) == by_content

    # A machine without the reference's run folder keeps its row, and pairs against its kept episode scores.

    shutil.rmtree(tmp_path / "runs" / "protonet-synthetic-smoke")
    earlier = harness.read_table("smoke", tmp_path / "results")
    kept5, kept3, anil_again = harness.reproduce(
        "smoke", tmp_path / "runs", episodes=40, progress=False, earlier=earlier
    )
    assert kept5["kept"] and kept5["ours"] == proto5["ours"] and kept5["commit"] == proto5["commit"]
    assert kept5["kept_from"] == table["generated_at_commit"] and "paired" not in kept5
    assert "kept" not in anil_again and anil_again["paired"] == anil["paired"]
    assert "kept from the table at" in harness.to_markdown("smoke", [kept5, kept3, anil_again])
    clean, dirty = ({**anil_again, "commit": "0123456789abcdef" + mark} for mark in ("", "-dirty"))
    assert "| `0123456789` |" in harness.to_markdown("smoke", [kept5, clean])
    assert "| `0123456789` with uncommitted changes |" in harness.to_markdown("smoke", [kept5, dirty])
    assert harness.reproduce("smoke", tmp_path / "runs", episodes=40, progress=False)[0]["status"] == "not run"

    (tmp_path / "results" / "smoke.episodes.json").unlink()
    earlier = harness.read_table("smoke", tmp_path / "results")
    bare5, bare3, unpaired = harness.reproduce("smoke", tmp_path / "runs", episodes=40, progress=False, earlier=earlier)
    assert unpaired["paired"]["versus"] == "protonet-synthetic-smoke" and "difference" not in unpaired["paired"]
    unscored = harness.to_markdown("smoke", [bare5, bare3, unpaired])
    assert "n/a: the reference protonet-synthetic-smoke was kept without per-episode scores" in unscored
    assert unscored.count("**no stored per-episode scores**") == 2, "both kept rows are marked, the live one is not"
    # A row kept with a paired difference but without scores says its difference cannot be recomputed.
    carried = {**bare3, "paired": anil["paired"]}
    assert "(carried over, not recomputable)" in harness.to_markdown("smoke", [bare5, carried])


def test_a_partial_run_is_scored_at_its_best_checkpoint_and_marked(tmp_path):
    run = tmp_path / "runs" / "protonet-synthetic-smoke"
    config = get_preset("protonet-synthetic-smoke").config
    from learntolearn.engine.trainer import Trainer

    trainer = Trainer(config, run, progress=False)
    trainer.config = config.with_keys(steps=40)
    trainer.train()
    rows = harness.reproduce("smoke", tmp_path / "runs", episodes=10, progress=False)
    assert rows[0]["status"] == "partial" and rows[0]["steps"] == 40 and rows[0]["of_steps"] == 60
    assert rows[0]["checkpoint"] == "best.pt" and rows[2]["status"] == "not run"
    assert "partial: 40 of 60 steps" in harness.to_markdown("smoke", rows)
    # A run started as a script from a checkout is listed as the ltl command it is.
    provenance = json.loads((run / "provenance.json").read_text())
    provenance["command"] = "/src/learntolearn/cli/main.py train --preset protonet-synthetic-smoke --threads 1"
    (run / "provenance.json").write_text(json.dumps(provenance))
    command = harness.reproduce("smoke", tmp_path / "runs", episodes=10, progress=False)[0]["command"]
    assert command == "ltl train --preset protonet-synthetic-smoke --threads 1"
    # While a process trains the run, its checkpoints change under the scorer: the row is not scored from it.
    from learntolearn.files import FolderLock

    harness.write_table("smoke", rows, tmp_path / "results")
    with FolderLock(run):
        busy = harness.reproduce("smoke", tmp_path / "runs", episodes=10, progress=False)
        assert busy[0]["status"] == "not run" and busy[0]["training_now"].startswith("process ")
        assert "not run (process " in harness.to_markdown("smoke", busy)
        earlier = harness.read_table("smoke", tmp_path / "results")
        kept = harness.reproduce("smoke", tmp_path / "runs", episodes=10, progress=False, earlier=earlier)[0]
        assert kept["kept"] and kept["ours"] == rows[0]["ours"]
        assert "is training it)" in harness.to_markdown("smoke", [kept])
    assert harness.reproduce("smoke", tmp_path / "runs", episodes=10, progress=False)[0]["status"] == "partial"


def test_the_recorded_commit_is_dirty_for_changed_code_but_not_for_recorded_outputs(tmp_path):
    import subprocess

    from learntolearn.engine.provenance import git_commit

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    assert git_commit(tmp_path) == "unknown"
    for name in ("code.py", "results/table.md", "benchmarks/results/speed.jsonl", "docs/results.md", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "results/table.md").write_text("2\n")
    (tmp_path / "benchmarks/results/speed.jsonl").write_text("1\n2\n")
    (tmp_path / "docs/results.md").write_text("2\n")
    (tmp_path / "README.md").write_text("2\n")
    assert git_commit(tmp_path / "results") == head
    (tmp_path / "code.py").write_text("2\n")
    assert git_commit(tmp_path / "results") == head + "-dirty"
