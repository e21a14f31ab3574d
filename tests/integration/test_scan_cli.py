"""`ltl scan`: train a preset resumably on the real SCAN files, translate commands, refuse bad input clearly."""

import pytest
from click.testing import CliRunner
from helpers import real_data_root

from learntolearn.cli.main import cli
from learntolearn.compositional import scan_runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = real_data_root()
    if root is None or not (root / "scan" / "tasks.txt").exists():
        pytest.skip("the SCAN files are not in the data root ($LTL_DATA or ../shared/data)")
    runs = tmp_path_factory.mktemp("scan")
    runner = CliRunner()
    for preset in ("metaseq2seq-scan-addjump", "transformer-scan-addjump"):
        result = runner.invoke(
            cli, ["scan", "train", preset, "--steps", "3", "--run", str(runs / preset), "--data-root", str(root)]
        )
        assert result.exit_code == 0, result.output
        assert "step 3: loss" in result.output
    return root, runs


def test_training_resumes_and_refuses_other_settings_in_the_same_folder(trained):
    root, runs = trained
    run = str(runs / "transformer-scan-addjump")
    args = ["--run", run, "--data-root", str(root)]
    result = CliRunner().invoke(cli, ["scan", "train", "transformer-scan-addjump", "--steps", "4", *args])
    assert result.exit_code == 0 and "resuming at step 3" in result.output and "step 4: loss" in result.output
    result = CliRunner().invoke(cli, ["scan", "train", "transformer-scan-addjump", "--seed", "5", *args])
    assert result.exit_code == 1 and "seed 0 -> 5" in result.output and "Traceback" not in result.output


def test_translate_prints_one_line_per_command_and_says_when_it_stopped_at_the_limit(trained):
    _, runs = trained
    run = str(runs / "metaseq2seq-scan-addjump")
    result = CliRunner().invoke(cli, ["scan", "translate", run, "jump twice", "walk left", "--max-length", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        actions = line.replace("[stopped at the length limit]", "").split()
        assert len(actions) <= 4 and set(actions) <= set(scan_runs.Vocabulary.SPECIALS) | {
            "I_JUMP",
            "I_WALK",
            "I_RUN",
            "I_LOOK",
            "I_TURN_LEFT",
            "I_TURN_RIGHT",
        }
        assert ("[stopped at the length limit]" in line) == (len(actions) == 4)
    piped = CliRunner().invoke(cli, ["scan", "translate", run, "--meaning", "jump=I_WALK"], input="jump\nlook\n")
    assert piped.exit_code == 0 and len(piped.output.strip().splitlines()) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["jump", "dax"], "unknown word(s) dax; this model knows after"),
        ([""], "command 1 is empty"),
        (["jump", "--meaning", "jump"], "write WORD=ACTION"),
        (["jump", "--meaning", "dax=I_WALK"], "words are jump, run, walk, look"),
    ],
)
def test_bad_input_gets_one_clear_error(trained, args, message):
    _, runs = trained
    result = CliRunner().invoke(cli, ["scan", "translate", str(runs / "metaseq2seq-scan-addjump"), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    other = CliRunner().invoke(
        cli, ["scan", "translate", str(runs / "transformer-scan-addjump"), "jump", "--meaning", "jump=I_RUN"]
    )
    assert "only meta seq2seq reads meanings" in other.output


def test_a_command_longer_than_any_trained_one_is_noted(trained):
    _, runs = trained
    long = " and ".join(["jump twice"] * 4)
    result = CliRunner().invoke(
        cli, ["scan", "translate", str(runs / "transformer-scan-addjump"), long]
    )
    assert result.exit_code == 0 and "longer than any training command (9 words)" in result.stderr


def test_score_run_marks_each_test_command(trained, monkeypatch):
    root, runs = trained
    few = scan_runs.load_scan("addprim_jump", "test", data_root=root)[:5]
    monkeypatch.setattr(scan_runs, "load_scan", lambda *a, **k: few)
    scored = scan_runs.score_run(runs / "transformer-scan-addjump", root)
    assert (
        scored["test_commands"] == 5
        and len(scored["correct"]) == 5
        and scored["accuracy"] == sum(scored["correct"]) / 5
    )
