"""Uncertainty maps, ``--std-map``, the training-time pictures and ``cinn demo``.

The demo is checked three ways: its jobs' input checks (no model, no server);
two HTTP clients at once against a served page (both backends); and, on the
TensorFlow backend, a real browser: ``cinn demo`` started on a free port with the
shipped weights, Debian's Chromium driven by Selenium through every tab, a
corrupt upload, an empty mask. The browser test runs once (TensorFlow); on JAX
the page is served in-process with the shipped colorization model (loading all
four models on JAX costs more than a minute of op-by-op compiling).

``CINN_DEMO_SCREENSHOTS=DIR`` keeps the browser test's screenshots of the three
tabs (small PNGs; the README's are made this way, ``docs/demo``).
"""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from cinn.apps.common.uncertainty import heat_map, sample_rows, std_map, uncertainty_image

ROOT = Path(__file__).resolve().parent.parent
BACKEND = keras.backend.backend()
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def photo(side, name="astronaut"):
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())[..., :3]
    return np.ascontiguousarray(cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA))


def write_png(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    return str(path)


# -- uncertainty maps -------------------------------------------------------------------
def test_std_map_is_the_per_pixel_spread_of_the_samples():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.integers(0, 256, (1, 5, 7, 3), dtype=np.uint8), 4, axis=0)
    assert std_map(same).shape == (5, 7) and not std_map(same).any()
    two = np.zeros((2, 4, 4, 3), np.uint8)
    two[1, 0, 0] = 20                                # one pixel differs by 20 in every channel
    std = std_map(two)
    assert std[0, 0] == pytest.approx(10.0) and std.sum() == pytest.approx(10.0)
    one = np.zeros((2, 4, 4, 3), np.uint8)
    one[1, 0, 0, 0] = 20                             # ... in one channel: rms over channels
    assert std_map(one)[0, 0] == pytest.approx(10.0 / np.sqrt(3))


def test_heat_map_colours_and_scale():
    std = np.tile(np.linspace(0, 8, 128, dtype=np.float32), (40, 1))
    img = heat_map(std)
    assert img.dtype == np.uint8 and img.shape == (40 + 28, 128, 3)  # + the colour bar
    lum = img[:40].astype(int).sum(axis=2).mean(axis=0)
    assert lum[0] < 10 and lum[-1] > 500                            # black .. pale yellow
    assert np.all(np.diff(lum) >= -3)                               # brighter with the std
    assert heat_map(std[:, :64]).shape == (40, 64, 3)              # narrow: no bar
    assert heat_map(std, legend=False).shape == (40, 128, 3)
    assert heat_map(np.zeros((8, 8))).max() < 8                     # all equal: black
    half = heat_map(std, vmax=16, legend=False)                     # a fixed scale
    np.testing.assert_array_equal(half, heat_map(std / 2, vmax=8, legend=False))
    assert half[:, -1].astype(int).sum() < img[:40, -1].astype(int).sum()
    samples = np.random.default_rng(1).integers(0, 256, (3, 6, 100, 3), dtype=np.uint8)
    assert uncertainty_image(samples).shape == (34, 100, 3)


def test_sample_rows_share_one_colour_scale():
    rng = np.random.default_rng(2)
    first = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    calm = np.repeat(first[:1, None], 3, axis=1)                     # row 0: all equal
    busy = rng.integers(0, 256, (1, 3, 8, 8, 3), dtype=np.uint8)
    grid = sample_rows(first, np.concatenate([calm, busy]))
    assert grid.shape == (8 + 4 + 8, 5 * 8 + 4 * 4, 3)               # input | 3 | map
    assert grid[:8, -8:].max() < 8 and grid[12:, -8:].max() > 100


# -- training-time pictures: what the app outputs, plus the uncertainty map ----------------
def test_training_pictures_show_app_outputs():
    from cinn.apps.colorization import task as colorization
    from cinn.apps.colorization.data import to_pair
    from cinn.apps.inpainting import task as inpainting
    from cinn.apps.superres import task as superres
    from cinn.apps.superres.resize import downscale

    rng = np.random.default_rng(0)
    imgs = np.stack([photo(16), photo(16, "coffee")])
    n = 3
    # colorization: colour pictures whose lightness is the input's
    _, c = to_pair(imgs)
    ab = rng.normal(0, 0.1, (2, n, 16, 16, 2)).astype("float32")
    grid = colorization.render_samples(c, ab)
    assert grid.shape == (16 + 4 + 16, (n + 2) * 16 + (n + 1) * 4, 3)
    _, c_back = to_pair(grid[:16, 20:36][None])
    assert np.abs(c_back[0] - c[0]).mean() < 0.01                   # sample 1 keeps L
    tile = grid[:16, 20:36].astype(int)
    assert np.abs(tile[..., 0] - tile[..., 1]).mean() > 2           # and it has colour
    # super-resolution: HR pictures (bicubic first) that downscale to the LR input
    x, c = superres.make_pair(np.stack([photo(32), photo(32, "coffee")]), None, 4)
    det = x[:, None] + rng.normal(0, 0.02, (2, n) + x.shape[1:]).astype("float32")
    grid = superres.render_samples(c, det)
    assert grid.shape == (32 + 4 + 32, (n + 2) * 32 + (n + 1) * 4, 3)
    lr = np.rint((c[0] + 0.5) * 255)
    err = np.abs(downscale(grid[:32, 36:68].astype(float), 4) - lr)
    assert err.mean() < 0.5 and err.max() < 4                       # (uint8, clipping)
    # inpainting: completed holes, the known pixels untouched, the hole white in the input
    x, c = inpainting.make_pair(imgs, np.random.default_rng(1))
    grid = inpainting.render_samples(c, x[:, None].repeat(n, axis=1))
    hole = c[0, ..., 3] > 0.5
    assert (grid[:16, :16][hole] == 255).all()
    np.testing.assert_array_equal(grid[:16, 20:36][~hole], imgs[0][~hole])
    np.testing.assert_allclose(grid[:16, 20:36][hole], imgs[0][hole], atol=1)  # x = truth
    assert grid[:16, -16:].max() < 8                                # all samples equal


# -- the sampling commands' --std-map ------------------------------------------------------
@pytest.mark.skipif(BACKEND != "tensorflow", reason="the option is NumPy after sampling; "
                    "sampling on JAX is covered by the apps' own tests")
@pytest.mark.parametrize("app", ["colorize", "superres", "inpaint"])
def test_std_map_option(app, tmp_path, capsys):
    from cinn.cli import build_parser, main

    img = write_png(tmp_path / "pic.png", photo(16 if app == "superres" else 32))
    extra = ["--box", "8,8,12,10"] if app == "inpaint" else []
    out = tmp_path / "out"
    assert main([app, img, *extra, "-n", "3", "--std-map", "-o", str(out)]) == 0
    name = "pic_x4_std.png" if app == "superres" else "pic_std.png"
    std = cv2.imread(str(out / name))
    size = 64 if app == "superres" else 32
    assert std is not None and std.shape == (size, size, 3) and std.any()
    assert str(out / name) in capsys.readouterr().out
    assert len(list(out.glob("*_std.png"))) == 1
    assert build_parser().parse_args([app, img, *extra]).std_map is False   # off by default


# -- the demo's checks of its input (no model needed: they come first) --------------------
def test_demo_refuses_bad_input_with_clear_messages(tmp_path):
    from cinn.apps.demo import jobs
    from cinn.apps.demo.jobs import DemoInputError

    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 20)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    tiny = write_png(tmp_path / "dot.png", np.zeros((1, 1, 3)))
    huge = write_png(tmp_path / "huge.png", np.zeros((1030, 1030, 3)))
    big_lr = write_png(tmp_path / "big_lr.png", np.zeros((130, 130, 3)))
    ok = write_png(tmp_path / "ok.png", photo(8))
    cases = [
        (lambda: jobs.colorize_job(None, str(corrupt)), "broken.png is not a readable image"),
        (lambda: jobs.colorize_job(None, str(text)), "notes.jpg is not a readable image"),
        (lambda: jobs.colorize_job(None, tiny), "1x1 pixels"),
        (lambda: jobs.colorize_job(None, huge), "at most 1024x1024"),
        (lambda: jobs.colorize_job(None, None), "Upload an image first"),
        (lambda: jobs.colorize_job(None, ok, n=9), "N must be between 1 and 8"),
        (lambda: jobs.colorize_job(None, ok, temperature=-1), "temperature must be between"),
        (lambda: jobs.superres_job({"superres8": None}, big_lr, scale=8), "at most 128x128"),
        (lambda: jobs.superres_job({"superres4": None}, ok, scale=8), "No 8x model"),
        (lambda: jobs.inpaint_job(None, photo(8), None, ""), "The mask is empty"),
        (lambda: jobs.inpaint_job(None, photo(8), np.zeros((8, 8), bool), " "),
         "The mask is empty"),
        (lambda: jobs.inpaint_job(None, photo(8), None, "1,2,3"), "The box must be x,y,w,h"),
        (lambda: jobs.inpaint_job(None, np.zeros((600, 600, 3), np.uint8), None, "1,1,9,9"),
         "at most 512x512"),
        (lambda: jobs.inpaint_job(None, None), "Upload an image first"),
    ]
    for call, expected in cases:
        with pytest.raises(DemoInputError) as err:
            call()
        assert expected in str(err.value) and str(tmp_path) not in str(err.value)


def test_editor_value_to_image_and_mask():
    from cinn.apps.demo.jobs import editor_parts

    background = np.zeros((6, 8, 4), np.uint8)
    background[..., :3], background[..., 3] = 90, 255
    layer = np.zeros((6, 8, 4), np.uint8)
    layer[2:4, 3:6] = (255, 0, 255, 255)
    rgb, mask = editor_parts({"background": background, "layers": [layer], "composite": None})
    assert rgb.shape == (6, 8, 3) and (rgb == 90).all()
    assert mask.sum() == 6 and mask[2:4, 3:6].all()
    assert editor_parts(None) == (None, None)
    assert editor_parts({"background": None, "layers": [], "composite": None}) == (None, None)


# -- the queue limit ------------------------------------------------------------------------
def test_queue_limit_refuses_at_once_and_says_when_to_retry():
    import asyncio

    from cinn.apps.demo.ui import RequestTimes, busy_message, limit_queue

    class Queue:   # what limit_queue sees of Gradio's queue: its length and push
        waiting = 0

        def __len__(self):
            return self.waiting

        async def push(self, body=None, request=None, username=None):
            return True, "event-1", "success"

    class Demo:
        _queue = Queue()

    times = RequestTimes()
    for seconds in (11.0, 13.0):
        times.add(seconds)
    assert limit_queue(Demo, 3, times)
    Demo._queue.waiting = 2
    assert asyncio.run(Demo._queue.push(body=None, request=None, username=None)) == (
        True, "event-1", "success")
    Demo._queue.waiting = 3
    ok, message, state = asyncio.run(Demo._queue.push(body=None, request=None, username=None))
    assert (ok, state) == (False, "error")
    assert message == ("The server is busy: 3 requests are waiting, the most this demo "
                       "queues (3). Please try again in about 25 s.")
    assert "about 4 minutes" in busy_message(9, 9, 230)
    assert not limit_queue(object(), 3, times)             # no queue to wrap: Gradio's limit


def test_served_page_past_the_queue_limit(tmp_path, monkeypatch):
    """``cinn demo --max-queue 1``, served: one request runs, one waits, the third is
    refused at once with the busy message; the first two are then answered."""
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    from cinn.apps.demo import jobs, ui

    release, running = threading.Event(), threading.Event()

    def slow_colorize(model, path, n, temperature, seed, colour_draws, progress):
        running.set()
        assert release.wait(120)
        rgb = photo(8)
        return jobs._finish("pic", [rgb] * int(n), [("grey input", rgb)], [], "slow job")

    monkeypatch.setattr(jobs, "colorize_job", slow_colorize)
    (tmp_path / "client_tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "client_tmp"))
    saved = os.environ.pop("GRADIO_TEMP_DIR", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    demo = ui.build({"colorization": None}, tmp_path / "demo", max_queue=1)
    try:
        ui.launch(demo, "127.0.0.1", port, tmp_path / "demo", block=False)
        wait_until_served(url)
        pic = handle_file(write_png(tmp_path / "pic.png", photo(8)))
        client = Client(url, verbose=False, analytics_enabled=False,
                        download_files=str(tmp_path / "downloads"))
        first = client.submit(pic, 2, 0.5, 0, api_name="/colorize")
        assert running.wait(120)
        second = client.submit(pic, 2, 0.5, 1, api_name="/colorize")
        deadline = time.time() + 120
        while len(demo._queue) < 1 and time.time() < deadline:
            time.sleep(0.05)
        third = client.submit(pic, 2, 0.5, 2, api_name="/colorize")
        with pytest.raises(Exception) as refused:
            third.result(timeout=120)
        detail = refused.value.response.json()["detail"]
        assert detail.startswith("The server is busy: 1 request is waiting, the most this "
                                 "demo queues (1). Please try again in about "), detail
        release.set()
        assert first.result(timeout=120)[0].startswith("slow job")
        assert second.result(timeout=120)[0].startswith("slow job")
    finally:
        release.set()
        demo.close()
        os.environ.pop("GRADIO_TEMP_DIR", None)
        if saved is not None:
            os.environ["GRADIO_TEMP_DIR"] = saved


# -- a served page ------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_served(url, proc=None, log=None, timeout=300):
    start = time.time()
    while time.time() - start < timeout:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"cinn demo exited ({proc.returncode}):\n{Path(log).read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} not served after {timeout} s")


SERVED_TESTS = ("test_two_clients_at_once_and_bad_input", "test_in_a_browser",
                "test_sigterm_stops_the_demo_and_removes_its_folder")


@pytest.fixture(scope="module", autouse=True)
def demo_process(request, tmp_path_factory):
    """TensorFlow: ``cinn demo --port FREE`` with the shipped weights, started in a
    subprocess before this module's first test (so that it loads while the other
    tests run), when a test that needs it was selected, with its own TMPDIR. Yields
    (url, log, process, TMPDIR) or None."""
    wanted = any(item.originalname in SERVED_TESTS for item in request.session.items
                 if item.module is request.module)
    if BACKEND != "tensorflow" or not wanted or importlib.util.find_spec("gradio") is None:
        yield None
        return
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "server.log"
    tmp = tmp_path_factory.mktemp("demo_tmp")
    cinn = Path(sys.executable).with_name("cinn")
    cmd = [str(cinn)] if cinn.exists() else [sys.executable, "-m", "cinn.cli"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd + ["demo", "--port", str(port)], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(tmp)})
    try:
        yield f"http://127.0.0.1:{port}/", log, proc, tmp
    finally:
        proc.terminate()                                # the server tidies up, then
        try:                                            # TensorFlow takes its time to
            proc.wait(3)                                # exit: no need to wait for it
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def demo_url(demo_process, tmp_path_factory):
    """The served page: TensorFlow: the ``cinn demo`` subprocess; JAX: the same page
    served in-process with the shipped colorization model."""
    pytest.importorskip("gradio")
    if demo_process is not None:
        url, log, proc, _ = demo_process
        wait_until_served(url, proc, log)
        yield url, log
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    folder = tmp_path_factory.mktemp("demo")
    from cinn.apps.common.pretrained import load_model
    from cinn.apps.demo import ui

    saved = os.environ.pop("GRADIO_TEMP_DIR", None)    # build() points it into folder
    try:
        demo = ui.build({"colorization": load_model("colorization")}, folder)
        ui.launch(demo, "127.0.0.1", port, folder, block=False)
        try:
            wait_until_served(url)
            yield url, None
        finally:
            demo.close()
    finally:
        os.environ.pop("GRADIO_TEMP_DIR", None)
        if saved is not None:
            os.environ["GRADIO_TEMP_DIR"] = saved


def test_two_clients_at_once_and_bad_input(demo_url, tmp_path, monkeypatch):
    """Two HTTP clients send a request at the same moment: both are answered (one
    queue). A corrupt file gets a clear error, and the next request still works."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    # gradio_client leaves an empty folder in the temporary directory for every file
    # it downloads: here, not in /tmp
    (tmp_path / "client_tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "client_tmp"))
    url, log = demo_url
    pics = [write_png(tmp_path / f"pic{k}.png", photo(24, name))
            for k, name in enumerate(("astronaut", "coffee"))]
    clients = [Client(url, verbose=False, analytics_enabled=False,
                      download_files=str(tmp_path / "downloads")) for _ in pics]
    barrier, results = threading.Barrier(2), [None, None]

    def ask(k):
        barrier.wait()
        results[k] = clients[k].predict(handle_file(pics[k]), 2 + k, 0.8, k,
                                        api_name="/colorize")

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for k, (info, gallery, std, files) in enumerate(results):
        assert f"pic{k}: 24x24, {2 + k} colourings" in info
        captions = [item["caption"] for item in gallery]
        assert captions == ["grey input"] + [f"sample {i + 1}" for i in range(2 + k)] + [
            "original"]
        assert cv2.imread(std).shape == (11 * 24 + 28, 11 * 24, 3)  # enlarged, colour bar
        assert {Path(f).name for f in files} == {f"pic{k}_{what}.png" for what in (
            "grid", "std", *(f"sample{i + 1}" for i in range(2 + k)))}
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 40)
    with pytest.raises(AppError, match="corrupt.png is not a readable image"):
        clients[0].predict(handle_file(str(corrupt)), 2, 0.8, 0, api_name="/colorize")
    info, plain, _, _ = clients[0].predict(handle_file(pics[1]), 2, 0.8, 5,
                                           api_name="/colorize")
    # the defaults: the flow with global latents, no post-hoc draw (the box unticked)
    assert ("pic1: 24x24, 2 colourings at temperature 0.8 (local latents at 0.5), seed 5, "
            "without global colour draws") in info
    info, drawn, _, _ = clients[0].predict(handle_file(pics[1]), 2, 0.8, 5, True,
                                           api_name="/colorize")
    assert "with global colour draws" in info and "without" not in info
    one, two = ([cv2.imread(item["image"]) for item in g[1:3]] for g in (plain, drawn))
    assert not any(np.array_equal(a, b) for a, b in zip(one, two))   # the draws applied
    if log is not None:                                  # the weights were loaded once
        assert Path(log).read_text().count("colorization/colorization_global.keras") == 1


# -- in a real browser ----------------------------------------------------------------------
BROWSER_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"]


@pytest.fixture()
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The demo page in the browser, by the elem_ids of ``cinn/apps/demo/ui.py``."""

    def __init__(self, driver, shots):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.d, self.By, self.shots = driver, By, shots
        self.Stale = StaleElementReferenceException
        # Gradio re-renders often: an element found a moment ago may be gone when it
        # is read. A condition that met such an element is asked again.
        self._wait = lambda cond, t: WebDriverWait(
            driver, t, 0.2, ignored_exceptions=(StaleElementReferenceException,)).until(cond)

    def wait(self, cond, timeout=180):
        from selenium.common.exceptions import TimeoutException

        try:
            return self._wait(cond, timeout)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s; messages in the page: "
                                 f"{self.toasts()}") from None

    def find(self, css):
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def all(self, css):
        return self.d.find_elements(self.By.CSS_SELECTOR, css)

    def texts(self, css):
        """The text of every element that matches, read in one step in the page (no
        element can go stale between finding it and reading it)."""
        return self.d.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)", css)

    def text(self, css):
        return "\n".join(self.texts(css))

    def tab(self, label):
        def click(_):
            [b for b in self.all("button[role=tab]") if b.text == label][0].click()
            return True
        self.wait(click, 30)                            # asked again if an element went stale

    def upload(self, prefix, path):
        self.find(f"#{prefix}-input input[type=file]").send_keys(str(path))

    def set_number(self, css, value):
        from selenium.webdriver.common.keys import Keys

        box = self.find(css)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.TAB)

    def run(self, prefix, n, seed):
        self.set_number(f"#{prefix}-n input[type=number]", n)
        self.set_number(f"#{prefix}-seed input", seed)
        before = self.text(f"#{prefix}-info")
        self.last, self.retries, self.clicked = prefix, 0, time.time()
        self.find(f"#{prefix}-run").click()
        return before

    def click_again(self):
        self.retries += 1
        self.clicked = time.time()
        self.find(f"#{self.last}-run").click()

    def upload_pending(self):
        """A click that came before the page had sent the upload is answered "Upload
        an image first": click again (a slow machine; at most 20 times)."""
        if self.retries < 20 and any("Upload an image first" in t for t in self.toasts()):
            self.close_toasts()
            time.sleep(0.5)
            self.click_again()
            return True
        return False

    def captions(self, prefix):
        return self.texts(f"#{prefix}-gallery .caption-label")

    def result(self, prefix, n, seed, before=""):
        """Wait for N samples of this run (its seed in the info line) and the map."""
        want = [f"sample {k + 1}" for k in range(n)]

        def done(_):
            info = self.text(f"#{prefix}-info")
            if self.upload_pending():
                return False
            if self.toasts():
                raise AssertionError(f"error in the page: {self.toasts()}")
            return (info != before and f"seed {seed}" in info
                    and [c for c in self.captions(prefix) if c.startswith("sample")] == want
                    and self.all(f"#{prefix}-std img"))
        self.wait(done)
        return self.text(f"#{prefix}-info")

    def toasts(self):
        return self.texts("[data-testid='toast-body']")

    def close_toasts(self):
        for button in self.all("[data-testid='toast-close']"):
            try:
                button.click()
            except self.Stale:                          # it closed by itself meanwhile
                pass
        self.wait(lambda _: not self.toasts(), 15)

    def error(self, expected):
        """Wait for a message; checks that need no model answer at once, so a click
        with no answer after 10 s was lost (the page was still busy): click again."""
        def shown(_):
            if self.upload_pending():
                return False
            if not self.toasts() and time.time() - self.clicked > 10 and self.retries < 5:
                self.click_again()
            return any(expected in t for t in self.toasts())
        self.wait(shown, 60)
        text = " ".join(self.toasts())
        self.close_toasts()
        return text

    def screenshot(self, name):
        """The whole page (tall window), kept small (0.6 scale, 96 colours)."""
        if self.shots is None:
            return
        from PIL import Image

        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1280, min(int(height) + 140, 2400))
        time.sleep(0.5)
        path = Path(self.shots) / f"{name}.png"
        self.d.save_screenshot(str(path))
        self.d.set_window_size(1280, 1000)
        img = Image.open(path).convert("RGB")
        img = img.resize((round(img.width * 0.6), round(img.height * 0.6)), Image.LANCZOS)
        img.quantize(96, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the browser test runs once, on the "
                    "default backend; on JAX the served page is checked by HTTP clients")
def test_in_a_browser(demo_url, browser, tmp_path):
    """Every tab in Chromium: upload, N samples, the uncertainty map, PNG downloads;
    a corrupt file and an empty mask give messages and the page keeps working."""
    url, log = demo_url
    shots = os.environ.get("CINN_DEMO_SCREENSHOTS") or str(tmp_path)
    Path(shots).mkdir(parents=True, exist_ok=True)
    page = Page(browser, shots)
    try:
        drive_every_tab(page, url, tmp_path)
    except Exception:
        browser.save_screenshot(str(tmp_path / "failure.png"))
        print(f"screenshot: {tmp_path / 'failure.png'}\nserver log:\n{Path(log).read_text()}")
        raise


def drive_every_tab(page, url, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    browser = page.d
    browser.get(url)
    page.wait(lambda _: page.all("#col-run"), 60)
    # everything the page loads comes from this server: no CDN, no fonts, no analytics
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(url) for u in loaded), loaded

    # colorization: a colour photo, N = 3
    page.upload("col", write_png(tmp_path / "astronaut.png", photo(128)))
    before = page.run("col", 3, 0)
    info = page.result("col", 3, 0, before)
    assert "astronaut: 128x128, 3 colourings" in info
    assert page.captions("col")[0] == "grey input" and page.captions("col")[-1] == "original"
    downloads = page.text("#col-files").replace("\n", "")
    assert "astronaut_grid.png" in downloads and "astronaut_std.png" in downloads, downloads
    page.screenshot("colorization")
    # a corrupt file: a message in the page; then a valid request still succeeds
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 40)
    page.upload("col", corrupt)
    page.run("col", 2, 1)
    assert "corrupt.png is not a readable image" in page.error("not a readable image")
    page.upload("col", write_png(tmp_path / "coffee.png", photo(64, "coffee")))
    before = page.run("col", 2, 2)
    assert "coffee: 64x64, 2 colourings" in page.result("col", 2, 2, before)

    # super-resolution 4x: bicubic | samples | mean, the comparison slider
    page.tab("Super-resolution")
    page.upload("sr", write_png(tmp_path / "small.png", photo(32)))
    before = page.run("sr", 3, 0)
    assert "small: 32x32 -> 128x128, 3 samples" in page.result("sr", 3, 0, before)
    assert page.captions("sr")[0] == "bicubic" and page.captions("sr")[-1] == (
        "mean of the samples")
    page.wait(lambda _: len(page.all("#sr-compare img")) == 2, 30)
    page.screenshot("superres")

    # inpainting: run without a hole (message), then paint one with the brush
    page.tab("Inpainting")
    page.upload("inp", write_png(tmp_path / "face.png", photo(96)))
    page.wait(lambda _: page.all("#inp-input canvas"), 30)
    time.sleep(1)
    page.run("inp", 3, 0)
    page.error("The mask is empty")
    page.find("#inp-input button[aria-label='Brush']").click()
    canvas = page.all("#inp-input canvas")[-1]
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -40, -30).click_and_hold()
    for _ in range(6):
        stroke = stroke.move_by_offset(12, 8)
    stroke.release().perform()
    before = page.run("inp", 3, 0)
    info = page.result("inp", 3, 0, before)
    missing = float(info.split(" with ")[1].split(" %")[0])
    assert 2 < missing < 60, info
    page.screenshot("inpainting")
    assert not page.toasts()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="``cinn demo`` runs as a process on "
                    "TensorFlow only (module docstring)")
def test_sigterm_stops_the_demo_and_removes_its_folder(demo_url, demo_process):
    """Last in this module. ``kill`` (SIGTERM, what ``docker stop`` and systemd send;
    a shell's background job ignores Ctrl+C's SIGINT) stops ``cinn demo`` as Ctrl+C
    does: exit code 0, and its folder of uploads and results is removed."""
    _, log, proc, tmp = demo_process
    assert len(list(tmp.glob("cinn-demo-*"))) == 1
    proc.terminate()
    assert proc.wait(120) == 0, log.read_text()[-2000:]
    assert not list(tmp.glob("cinn-demo-*"))
