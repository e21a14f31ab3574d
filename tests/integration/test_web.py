"""`ltl serve`'s web app through Starlette's test client: the routes, their limits, and sessions kept apart."""

import base64
import csv
import io

import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="the test extra is not installed")
from starlette.testclient import TestClient

from learntolearn import FewShotClassifier
from learntolearn.cli.main import cli
from learntolearn.data.images import read_query_folder
from learntolearn.web import ServeConfig, create_app
from learntolearn.web.sessions import SessionStore

SHAPES = {"bar": [(20, 70), (120, 70)], "pole": [(70, 20), (70, 120)], "slash": [(20, 120), (120, 20)]}


def glyph(points, shift=0):
    """A canvas drawing as the page makes it: black strokes on white, 140x140 RGBA."""
    image = Image.new("RGBA", (140, 140), "white")
    ImageDraw.Draw(image).line([(x + shift, y + shift) for x, y in points], fill="black", width=7)
    return image


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(image):
    return "data:image/png;base64," + base64.b64encode(png(image)).decode()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A ProtoNet meta-trained for a few steps on synthetic glyphs: enough to tell strokes apart."""
    run = tmp_path_factory.mktemp("serve") / "run"
    args = ["train", "--dataset", "synthetic", "--split", "default", "--image-size", "16", "--steps", "20"]
    args += ["--val-every", "0", "--test-episodes", "2", "--queries", "3", "--ways", "3", "--out", str(run)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    return run


@pytest.fixture
def client(model):
    return TestClient(create_app(ServeConfig(models=(str(model),))))


def test_a_drawn_canvas_gives_the_logits_of_the_same_png_on_disk(model, client, tmp_path):
    classes = [{"name": name, "examples": [data_url(glyph(points))]} for name, points in SHAPES.items()]
    query = glyph(SHAPES["bar"], shift=6)
    answer = client.post("/api/draw/predict", json={"classes": classes, "query": data_url(query)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["classes"] == list(SHAPES) and answer.json()["predicted"] == "bar"
    for name, points in SHAPES.items():
        (tmp_path / "support" / name).mkdir(parents=True)
        glyph(points).save(tmp_path / "support" / name / "0.png")
    query.save(tmp_path / "query.png")
    classifier = FewShotClassifier.load(model).fit(tmp_path / "support", allow_fewer_shots=True)
    on_disk = classifier.scores(
        classifier.inputs(read_query_folder(tmp_path / "query.png", classifier.preprocessing)[0])
    )
    torch.testing.assert_close(torch.tensor(answer.json()["probabilities"]), on_disk[0], rtol=0, atol=1e-4)


def test_bad_drawings_are_refused_with_a_message(client):
    good = data_url(glyph(SHAPES["bar"]))
    one_class = {"classes": [{"name": "a", "examples": [good]}], "query": good}
    assert client.post("/api/draw/predict", json=one_class).json() == {"error": "draw 2 to 20 classes"}
    not_png = {"classes": [{"name": n, "examples": ["data:text/html;base64,PGI+"]} for n in "ab"], "query": good}
    assert "must be a PNG data URL" in client.post("/api/draw/predict", json=not_png).json()["error"]
    garbage = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    broken = {"classes": [{"name": n, "examples": [garbage]} for n in "ab"], "query": good}
    assert "is not a readable image" in client.post("/api/draw/predict", json=broken).json()["error"]
    as_form = client.post("/api/draw/predict", content=b"{}", headers={"content-type": "text/plain"})
    assert as_form.status_code == 400 and "send JSON" in as_form.json()["error"]


def photo_files(count, colour):
    return [("files", (f"{colour}{i}.png", png(Image.new("RGB", (60, 40), colour)), "image/png")) for i in range(count)]


def test_photo_sessions_are_isolated_and_their_results_download_as_csv(model):
    app = create_app(ServeConfig(models=(str(model),)))
    alice, bob = TestClient(app), TestClient(app)
    for name, colour in (("red things", "red"), ("blue things", "blue")):
        answer = alice.post("/api/photos/examples", data={"class": name}, files=photo_files(2, colour))
        assert answer.status_code == 200, answer.text
    assert answer.json()["classes"] == {"red things": 2, "blue things": 2}
    refused = bob.post("/api/photos/label", files=photo_files(1, "red"))
    assert refused.status_code == 400 and "at least two classes" in refused.json()["error"], "bob sees none of alice's"
    bob.post("/api/photos/examples", data={"class": "cats"}, files=photo_files(1, "green"))
    bob.post("/api/photos/examples", data={"class": "dogs"}, files=photo_files(1, "yellow"))
    labelled = alice.post("/api/photos/label", files=photo_files(1, "red") + photo_files(1, "blue"))
    assert [p["predicted_class"] for p in labelled.json()["predictions"]] == ["red things", "blue things"]
    table = alice.get("/api/photos/results.csv")
    assert table.headers["content-type"].startswith("text/csv")
    assert table.text.splitlines()[0] == "file,predicted_class,confidence,top3" and "red0.png,red things" in table.text
    assert "cats" not in table.text and len(app.state.sessions) == 2
    assert alice.cookies["ltl_session"] != bob.cookies["ltl_session"]


def test_names_that_look_like_formulas_download_as_text(model):
    """A class or file name someone chose such as ``=HYPERLINK(...)`` must not run as a formula when the CSV
    is opened in a spreadsheet (OWASP's CSV injection): it is written with a leading apostrophe."""
    from learntolearn.files import spreadsheet_text

    assert [spreadsheet_text(t) for t in ("=1+1", "+1", "-x", "@a", "\tb", "plain", "", "a=b")] == [
        "'=1+1", "'+1", "'-x", "'@a", "'\tb", "plain", "", "a=b"
    ]  # fmt: skip
    client = TestClient(create_app(ServeConfig(models=(str(model),))))
    for name, colour in (("=HYPERLINK(1)", "red"), ("blue things", "blue")):
        assert (
            client.post("/api/photos/examples", data={"class": name}, files=photo_files(2, colour)).status_code == 200
        )
    evil = [("files", ("@evil.png", png(Image.new("RGB", (60, 40), "red")), "image/png"))]
    assert client.post("/api/photos/label", files=evil).status_code == 200
    rows = list(csv.reader(io.StringIO(client.get("/api/photos/results.csv").text)))
    assert rows[1][:2] == ["'@evil.png", "'=HYPERLINK(1)"] and rows[1][3].startswith("'=HYPERLINK(1)")


def test_uploads_are_checked_for_type_size_count_and_host(model):
    app = create_app(ServeConfig(models=(str(model),), max_files=2, max_request_bytes=2**20, max_file_bytes=2**20))
    client = TestClient(app)
    text = client.post(
        "/api/photos/examples", data={"class": "a"}, files=[("files", ("a.txt", b"hello", "text/plain"))]
    )
    assert text.status_code == 400 and "a.txt is text/plain, not an image" in text.json()["error"]
    fake = client.post(
        "/api/photos/examples", data={"class": "a"}, files=[("files", ("a.png", b"GIF89a", "image/png"))]
    )
    assert fake.status_code == 400 and "not a readable image" in fake.json()["error"]
    many = client.post("/api/photos/examples", data={"class": "a"}, files=photo_files(3, "red"))
    assert many.status_code == 400
    big = client.post(
        "/api/photos/examples", data={"class": "a"}, files=[("files", ("big.png", b"x" * (2**20 + 10), "image/png"))]
    )
    assert big.status_code == 400 and "at most 1 MB" in big.json()["error"]
    assert TestClient(app, base_url="http://evil.example").get("/api/status").status_code == 400
    assert client.get("/static/../../../etc/passwd").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    cookie = (
        client.get("/api/status").headers.get("set-cookie") or TestClient(app).get("/api/status").headers["set-cookie"]
    )
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


def test_idle_sessions_are_dropped_and_their_number_is_bounded():
    store = SessionStore(timeout=0.0, max_sessions=2)
    first, new = store.get_or_create(None)
    assert new and store.get_or_create(first.token)[0] is not first, "an idle session is gone"
    store = SessionStore(timeout=60, max_sessions=2)
    a, _ = store.get_or_create(None)
    b, _ = store.get_or_create(None)
    store.get_or_create(b.token)
    store.get_or_create(None)
    assert len(store) == 2 and store.get_or_create(a.token)[1], "the least recently seen one made room"


def test_without_a_model_the_draw_tab_says_how_to_serve_one():
    client = TestClient(create_app(ServeConfig()))
    assert client.get("/api/status").json()["draw"] is False
    good = data_url(glyph(SHAPES["bar"]))
    answer = client.post("/api/draw/predict", json={"classes": [], "query": good})
    assert answer.status_code == 400 and "ltl serve MODEL" in answer.json()["error"]


def test_ltl_serve_binds_to_localhost_and_warns_when_told_otherwise(model, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    local = CliRunner().invoke(cli, ["serve", str(model)])
    assert local.exit_code == 0 and "warning" not in local.output and "http://127.0.0.1:8000/" in local.output
    assert calls[-1][1]["host"] == "127.0.0.1" and calls[-1][1]["port"] == 8000
    shared = CliRunner().invoke(cli, ["serve", str(model), "--host", "0.0.0.0", "--port", "9000"])
    assert shared.exit_code == 0 and "warning: listening on 0.0.0.0" in shared.output
    assert calls[-1][1]["host"] == "0.0.0.0" and calls[-1][1]["port"] == 9000
    broken = CliRunner().invoke(cli, ["serve", str(model / "config.json")])
    assert broken.exit_code != 0 and len(calls) == 2, "a file that is not a model fails before serving"


def test_a_sessions_fitted_head_is_reused_until_its_examples_change(model, monkeypatch):
    from learntolearn.algorithms import LogisticRegressionProbe

    fits = []
    real_adapt = LogisticRegressionProbe.adapt
    monkeypatch.setattr(
        LogisticRegressionProbe, "adapt", lambda self, x, y: fits.append(len(y)) or real_adapt(self, x, y)
    )
    client = TestClient(create_app(ServeConfig(models=(str(model),))))
    client.post("/api/photos/examples", data={"class": "red"}, files=photo_files(1, "red"))
    client.post("/api/photos/examples", data={"class": "blue"}, files=photo_files(1, "blue"))
    for _ in range(3):
        assert client.post("/api/photos/label", files=photo_files(1, "red")).status_code == 200
    assert fits == [2], "one fit for three labelling requests"
    client.post("/api/photos/examples", data={"class": "blue"}, files=photo_files(1, "navy"))
    client.post("/api/photos/label", files=photo_files(1, "red"))
    assert fits == [2, 3], "new examples, a new fit"
