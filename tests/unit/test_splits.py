from learntolearn.data.splits.omniglot import ROTATIONS, VINYALS_V1, expand


def characters(subset: str) -> int:
    return sum(last - first + 1 for _, first, last in VINYALS_V1[subset])


def test_vinyals_split_has_the_published_sizes():
    assert (characters("train"), characters("val"), characters("test"), characters("trainval")) == (
        1028,
        172,
        423,
        1200,
    )
    assert len(expand(VINYALS_V1["train"])) == 4 * 1028


def test_vinyals_subsets_are_disjoint_and_trainval_is_train_then_val():
    train, val, test = (set(expand(VINYALS_V1[s])) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert expand(VINYALS_V1["trainval"]) == expand(VINYALS_V1["train"]) + expand(VINYALS_V1["val"])


def test_vinyals_split_equals_the_published_lists_line_for_line(data_root):
    folder = data_root / "omniglot" / "splits" / "vinyals"
    for subset in ("train", "val", "test", "trainval"):
        published = (folder / f"{subset}.txt").read_text().splitlines()
        assert expand(VINYALS_V1[subset]) == published, subset


def test_rotations_can_be_dropped():
    assert expand(VINYALS_V1["val"], (0,))[:2] == ["Hebrew/character01/rot000", "Hebrew/character02/rot000"]
    assert ROTATIONS == (0, 90, 180, 270)
