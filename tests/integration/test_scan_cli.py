"""`ltl scan`: train a preset resumably on the real SCAN files, translate commands, refuse bad input clearly."""

import random

import pytest
from click.testing import CliRunner
from helpers import real_data_root

from learntolearn.cli import scan as scan_cli
from learntolearn.cli.main import cli
from learntolearn.compositional import scan_runs
from learntolearn.files import load_tensors, save_tensors


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = real_data_root()
    if root is None or not (root / "scan" / "tasks.txt").exists():
        pytest.skip("the SCAN files are not in the data root ($LTL_DATA or ../shared/data)")
    runs = tmp_path_factory.mktemp("scan")
    runner = CliRunner()
    for preset in (
        "metaseq2seq-scan-addjump",
        "metaseq2seq-scan-aroundright",
        "transformer-scan-addjump",
        "mlc-scan-addjump",
        "mlc-scan-aroundright",
        "mlc-scan-length",
    ):
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


def test_other_commands_given_a_scan_run_name_the_scan_command(trained):
    run = trained[1] / "mlc-scan-addjump"
    for command in (["eval", str(run)], ["rl", "eval", str(run)], ["continual", "eval", str(run)]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1 and f"is a `ltl scan` run: read it with `ltl scan eval {run}`" in result.output


def test_a_run_of_an_earlier_network_version_is_refused_with_the_fix(trained, tmp_path):
    root, runs = trained
    state = load_tensors(runs / "metaseq2seq-scan-addjump" / "checkpoint.pt", "test")
    del state["network_version"]  # as checkpoints written before the field
    (tmp_path / "old").mkdir()
    save_tensors(state, tmp_path / "old" / "checkpoint.pt")
    for command in (
        ["translate", str(tmp_path / "old"), "jump"],
        ["eval", str(tmp_path / "old"), "--data-root", str(root)],
    ):
        result = CliRunner().invoke(cli, ["scan", *command])
        assert (
            result.exit_code == 1 and "network of version 1" in result.output and "train the run again" in result.output
        )
        assert "Traceback" not in result.output


def test_translate_prints_one_line_per_command_and_says_when_it_stopped_at_the_limit(trained):
    _, runs = trained
    run = str(runs / "metaseq2seq-scan-addjump")
    result = CliRunner().invoke(cli, ["scan", "translate", run, "jump twice", "walk left", "--max-length", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        actions = line.replace("[stopped at the length limit]", "").split()
        assert len(actions) <= 3 and set(actions) <= set(scan_runs.Vocabulary.SPECIALS) | {
            "I_JUMP",
            "I_WALK",
            "I_RUN",
            "I_LOOK",
            "I_TURN_LEFT",
            "I_TURN_RIGHT",
        }
        if "[stopped at the length limit]" in line:
            assert len(actions) == 3
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
    assert "--meaning is for meta seq2seq runs; this run is transformer" in other.output


def test_a_command_longer_than_any_trained_one_is_noted(trained):
    _, runs = trained
    long = " and ".join(["jump twice"] * 4)
    result = CliRunner().invoke(cli, ["scan", "translate", str(runs / "transformer-scan-addjump"), long])
    assert result.exit_code == 0 and "longer than any training command (9 words)" in result.stderr


@pytest.mark.parametrize("preset", ["transformer-scan-addjump", "mlc-scan-addjump"])
def test_score_run_marks_each_test_command(trained, monkeypatch, preset):
    root, runs = trained
    load = scan_runs.load_scan
    monkeypatch.setattr(scan_runs, "load_scan", lambda split, subset, **k: load(split, subset, **k)[:12])
    scored = scan_runs.score_run(runs / preset, root)
    assert scored["test_commands"] == 12 and len(scored["correct"]) == 12
    assert scored["accuracy"] == sum(scored["correct"]) / 12


def test_mlc_reads_training_commands_and_the_new_primitive_at_test(trained):
    root, runs = trained
    config = scan_runs.preset("mlc-scan-addjump")
    train = scan_runs.load_scan("addprim_jump", "train", data_root=root)
    for seed in range(20):
        study = scan_runs.evaluation_study(config, train, random.Random(seed))
        assert len(study) == 10 and (("jump",), ("I_JUMP",)) in study and set(study) <= set(train)
    result = CliRunner().invoke(cli, ["scan", "translate", str(runs / "mlc-scan-addjump"), "jump twice"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 1


def test_around_right_studies_the_turns_and_takes_other_meanings_of_the_directions(trained):
    _, runs = trained
    translator = scan_runs.ScanTranslator(runs / "metaseq2seq-scan-aroundright")
    assert translator.study == ((("turn", "left"), ("I_TURN_LEFT",)), (("turn", "right"), ("I_TURN_RIGHT",)))
    assert {"1", "2"} <= translator.codec.words and "I_1" in translator.codec.outputs.tokens
    swapped = scan_runs.ScanTranslator(runs / "metaseq2seq-scan-aroundright", {"right": "I_TURN_LEFT"})
    assert swapped.study[1] == (("turn", "right"), ("I_TURN_LEFT",))
    result = CliRunner().invoke(
        cli, ["scan", "translate", str(runs / "metaseq2seq-scan-aroundright"), "--meaning", "jump=I_WALK", "walk"]
    )
    assert result.exit_code == 1 and "words are left, right" in result.output


def test_meta_seq2seq_refuses_a_split_it_has_no_episodes_for():
    with pytest.raises(scan_runs.LtlError, match="addprim_jump, template_around_right, not 'length'"):
        scan_runs.ScanRunConfig(split="length")
    with pytest.raises(scan_runs.LtlError, match="primitives-alone protocol is defined for addprim_jump only"):
        scan_runs.ScanRunConfig(split="template_around_right", protocol="primitives-alone")


def test_eval_scores_held_out_episodes_of_meta_seq2seqs_training_distribution(trained, monkeypatch):
    root, runs = trained
    # the test split is scored elsewhere; here only the held-out episodes
    monkeypatch.setattr(scan_cli, "score_run", lambda run, data_root: {"accuracy": 0.5, "test_commands": 2})
    run = str(runs / "metaseq2seq-scan-aroundright")
    result = CliRunner().invoke(cli, ["scan", "eval", run, "--episodes", "2", "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    assert "held-out episodes:" in result.output and "under SCAN's own" in result.output
    held = scan_runs.score_episodes(run, str(root), episodes=2)
    assert 0 <= held["permuted_meanings"] <= 1 and held["episodes"] == 2 and held["queries"] == 20
    mlc = scan_runs.score_episodes(runs / "mlc-scan-addjump", str(root), episodes=3)  # one-query episodes
    assert 0 <= mlc["scan_meanings"] <= 1 and mlc["episodes"] == 3 and mlc["queries"] == 1
    with pytest.raises(scan_runs.LtlError, match="this run is transformer"):
        scan_runs.score_episodes(runs / "transformer-scan-addjump", str(root))


def test_a_checkpoint_from_before_a_setting_existed_loads_with_the_default_that_built_it(trained, tmp_path):
    _, runs = trained
    state = load_tensors(runs / "mlc-scan-addjump" / "checkpoint.pt", "test")
    del state["config"]["attention_dropout"]
    (tmp_path / "old").mkdir()
    save_tensors(state, tmp_path / "old" / "checkpoint.pt")
    old = scan_runs.ScanTranslator(tmp_path / "old")
    assert old.config.attention_dropout is None and old.model.decoder[0].dropout_p == old.config.dropout
    new = scan_runs.ScanTranslator(runs / "mlc-scan-addjump")
    assert new.config.attention_dropout == 0.0
    assert old.translate(["jump twice"]) == new.translate(["jump twice"]), "dropout settings do not change eval"
