"""SCAN: the authors' files, checked and parsed; the vocabulary; meta seq2seq's primitive-remapping episodes."""

import shutil

import pytest
from helpers import real_data_root

from learntolearn.data import scan
from learntolearn.data.scan import PRIMITIVES, PrimitiveRemapEpisodes, Vocabulary, load_scan, parse_pairs
from learntolearn.errors import DataError

SIZES = {  # (train, test) lines of the published files
    "simple": (16728, 4182),
    "length": (16990, 3920),
    "addprim_jump": (14670, 7706),
    "addprim_turn_left": (21890, 1208),
    "template_around_right": (15225, 4476),
    "template_jump_around_right": (18528, 1173),
}


def scan_root():
    root = real_data_root()
    if root is None or not (root / "scan" / "tasks.txt").exists():
        pytest.skip("the SCAN files are not in the data root ($LTL_DATA or ../shared/data)")
    return root


def test_every_split_loads_with_the_published_sizes_and_vocabularies():
    root = scan_root()
    for split, (train, test) in SIZES.items():
        assert (len(load_scan(split, "train", data_root=root)), len(load_scan(split, "test", data_root=root))) == (
            train,
            test,
        ), split
    everything = load_scan("all", data_root=root)
    assert len(everything) == 20910
    words = {w for command, _ in everything for w in command}
    actions = {a for _, output in everything for a in output}
    assert len(words) == 13 and actions == {"I_JUMP", "I_LOOK", "I_RUN", "I_TURN_LEFT", "I_TURN_RIGHT", "I_WALK"}


def test_the_splits_hold_out_what_they_say():
    root = scan_root()
    longest_train = max(len(out) for _, out in load_scan("length", "train", data_root=root))
    assert longest_train < min(len(out) for _, out in load_scan("length", "test", data_root=root))
    jump_in_training = {
        command for command, _ in load_scan("addprim_jump", "train", data_root=root) if "jump" in command
    }
    assert jump_in_training == {("jump",)}, "jump is seen only on its own in training"
    assert all("jump" in command for command, _ in load_scan("addprim_jump", "test", data_root=root))


def test_a_changed_file_is_refused_and_a_missing_one_is_downloaded_and_checked(tmp_path, monkeypatch):
    root = scan_root()
    (tmp_path / "scan" / "simple_split").mkdir(parents=True)
    original = root / "scan" / "simple_split" / "tasks_test_simple.txt"
    changed = tmp_path / "scan" / "simple_split" / "tasks_test_simple.txt"
    changed.write_bytes(original.read_bytes().replace(b"I_JUMP", b"I_RUN", 1))
    with pytest.raises(DataError, match="is not the authors' simple_split/tasks_test_simple.txt"):
        load_scan("simple", "test", data_root=tmp_path)
    changed.unlink()
    mirror = tmp_path / "mirror"
    shutil.copytree(root / "scan", mirror)
    monkeypatch.setattr(scan, "URL", mirror.as_uri() + "/")
    assert len(load_scan("simple", "test", data_root=tmp_path, download=True)) == 4182
    assert changed.read_bytes() == original.read_bytes()
    with pytest.raises(DataError, match="not found"):
        load_scan("length", "test", data_root=tmp_path)  # download not allowed: a clear error


def test_malformed_lines_and_unknown_words_name_the_problem():
    assert parse_pairs(["IN: jump twice OUT: I_JUMP I_JUMP", ""], "x") == [(("jump", "twice"), ("I_JUMP", "I_JUMP"))]
    with pytest.raises(DataError, match="x:2: expected 'IN: <command> OUT: <actions>'"):
        parse_pairs(["IN: jump OUT: I_JUMP", "jump -> I_JUMP"], "x")
    vocabulary = Vocabulary.build([("jump", "twice"), ("walk",)])
    assert vocabulary.tokens[:3] == ("<pad>", "<sos>", "<eos>") and len(vocabulary) == 6
    assert vocabulary.decode(vocabulary.encode(("walk", "twice"))) == ("walk", "twice")
    with pytest.raises(DataError, match="unknown word\\(s\\) fly, swim: this vocabulary knows jump, twice, walk"):
        vocabulary.encode(("swim", "twice", "fly"))
    with pytest.raises(DataError, match="empty sequence"):
        vocabulary.encode(())


def test_episodes_queries_follow_from_their_study_examples():
    pairs = [
        (("jump", "twice"), ("I_JUMP", "I_JUMP")),
        (("run", "and", "jump"), ("I_RUN", "I_JUMP")),
        (("walk", "left"), ("I_TURN_LEFT", "I_WALK")),
        (("look", "after", "turn", "right"), ("I_TURN_RIGHT", "I_LOOK")),
        (("turn", "left"), ("I_TURN_LEFT",)),  # no primitive: never a query
        (("jump",), ("I_JUMP",)),  # a primitive alone: a study example, not a query
    ]
    source = dict(pairs)
    episodes = PrimitiveRemapEpisodes(pairs, queries=4, seed=1)
    permuted = 0
    for _ in range(50):
        episode = episodes.sample()
        learned = {command[0]: output[0] for command, output in episode.study}
        assert learned == episode.meaning and sorted(learned.values()) == sorted(PRIMITIVES.values())
        permuted += learned != PRIMITIVES
        assert len(episode.queries) == 4
        for command, output in episode.queries:
            # what the command means in SCAN, with each primitive's action read off the study examples
            expected = tuple(learned.get(w, a) for w, a in zip_actions(command, source[command]))
            assert output == expected and command in source and len(command) > 1
    assert permuted > 40, "meanings are permuted in most episodes"
    assert set(PrimitiveRemapEpisodes(pairs, queries=4).test().queries) == set(pairs[:4])


def zip_actions(command, actions):
    """Pair each action with the primitive word that produced it (None for turns) in these small commands."""
    by_action = {a: w for w, a in PRIMITIVES.items()}
    return [(by_action.get(a), a) for a in actions]


def test_authors_protocol_renames_words_and_keeps_every_episode_consistent():
    """Lake 2019's code: study examples are other commands, primitive words renamed; the test meanings never."""
    root = real_data_root()
    source = load_scan("all", data_root=root) if root and (root / "scan" / "tasks.txt").exists() else None
    pairs = source or [  # a small grammar closed under renaming the primitives
        *(((w,), (a,)) for w, a in PRIMITIVES.items()),
        *(((w, "twice"), (a, a)) for w, a in PRIMITIVES.items()),
        *(((w, "left"), ("I_TURN_LEFT", a)) for w, a in PRIMITIVES.items()),
        *(((w, "and", v), (a, b)) for w, a in PRIMITIVES.items() for v, b in PRIMITIVES.items() if v != w),
        (("turn", "left"), ("I_TURN_LEFT",)),
    ]
    known = dict(pairs)
    study, queries = (3, 4) if source is None else (20, 20)
    episodes = PrimitiveRemapEpisodes(pairs, queries=queries, study=study, rename_words=True, seed=3)
    to_scan = {action: word for word, action in PRIMITIVES.items()}
    jump_composed = 0
    for _ in range(40):
        episode = episodes.sample()
        assert episode.meaning != PRIMITIVES and sorted(episode.meaning.values()) == sorted(PRIMITIVES.values())
        assert len(episode.study) == study and len(episode.queries) == queries
        assert not set(episode.study) & set(episode.queries)
        for command, output in episode.study + episode.queries:
            # read each primitive word by this episode's meaning: the command SCAN knows with that action's word
            in_scan = tuple(to_scan[episode.meaning[w]] if w in PRIMITIVES else w for w in command)
            assert known[in_scan] == tuple(output), (command, output, episode.meaning)
            jump_composed += "jump" in command and len(command) > 1
    assert jump_composed > 0, "renamed words put jump into longer commands"
    test = episodes.test()
    assert test.meaning == PRIMITIVES and set(test.study) == {((w,), (a,)) for w, a in PRIMITIVES.items()}


def test_keep_is_the_share_of_episodes_with_scans_own_meanings():
    pairs = [(("jump", "twice"), ("I_JUMP", "I_JUMP")), (("walk", "and", "run"), ("I_WALK", "I_RUN"))]
    kept = PrimitiveRemapEpisodes(pairs, queries=1, keep=1.0, seed=0)
    assert all(kept.sample().meaning == PRIMITIVES for _ in range(20))
    some = PrimitiveRemapEpisodes(pairs, queries=1, keep=0.3, seed=0)
    share = sum(some.sample().meaning == PRIMITIVES for _ in range(1000)) / 1000
    assert 0.25 < share < 0.35


DIRECTIONS = {"right": "I_TURN_RIGHT", "left": "I_TURN_LEFT"}


def test_around_right_episodes_draw_abstract_directions_and_never_the_held_out_meaning():
    """Lake 2019's around-right episodes: "right" and "left" written and acted as two of four directions."""
    root = real_data_root()
    source = load_scan("all", data_root=root) if root and (root / "scan" / "tasks.txt").exists() else None
    pairs = source or [  # a grammar symmetric in left and right, as SCAN is
        *(((d,), (a,)) for d, a in DIRECTIONS.items()),
        *((("walk", d), (a, "I_WALK")) for d, a in DIRECTIONS.items()),
        *((("turn", "around", d), (a,) * 4) for d, a in DIRECTIONS.items()),
        *(
            (("walk", d, "and", "walk", e), (a, "I_WALK", b, "I_WALK"))
            for d, a in DIRECTIONS.items()
            for e, b in DIRECTIONS.items()
        ),
    ]
    known = dict(pairs)
    extra = {"1": "I_1", "2": "I_2"}
    episodes = PrimitiveRemapEpisodes(
        pairs,
        primitives=DIRECTIONS,
        extra=extra,
        held_out={"right": "I_TURN_RIGHT"},
        queries=4,
        study=3,
        rename_words=True,
        seed=2,
    )
    seen_words, seen_actions, left_kept = set(), set(), 0
    for _ in range(200):
        episode = episodes.sample()
        assert episode.meaning.get("right") != "I_TURN_RIGHT"
        assert len(episode.meaning) == len(set(episode.meaning.values())) == 2
        seen_words |= set(episode.meaning)
        seen_actions |= set(episode.meaning.values())
        left_kept += episode.meaning.get("left") == "I_TURN_LEFT"
        # written words back to SCAN's directions (either bijection: SCAN is symmetric in left and right)
        back = dict(zip(sorted(episode.meaning), DIRECTIONS))
        actions_back = {episode.meaning[w]: DIRECTIONS[d] for w, d in back.items()}
        for command, output in episode.study + episode.queries:
            in_scan = tuple(back.get(w, w) for w in command), tuple(actions_back.get(a, a) for a in output)
            assert known[in_scan[0]] == in_scan[1], (command, output, episode.meaning)
    assert seen_words == {"right", "left", "1", "2"} and seen_actions == {*DIRECTIONS.values(), *extra.values()}
    assert left_kept > 0, "only the held-out assignment is withheld, not every familiar one"


def test_held_out_meanings_must_be_the_primitives_own():
    with pytest.raises(DataError, match="held_out"):
        PrimitiveRemapEpisodes(
            [(("walk", "right"), ("I_TURN_RIGHT", "I_WALK"))], primitives=DIRECTIONS, held_out={"right": "I_TURN_LEFT"}
        )
