"""The demo page: one Gradio tab per app (``build(models, workdir)``).

Offline by construction: analytics, the version check and Hugging Face calls are
switched off before Gradio is imported (``offline_environment``), the page's
scripts, styles and fonts are Gradio's own files served by this server, and no
share link is made. All model work runs in one queue (one request at a time,
the others wait their turn and see their place in the queue); past ``max_queue``
waiting requests a new one is told at once that the server is busy and when to
try again (``limit_queue``).
"""
import os
import shutil
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from cinn.apps.demo import jobs
from cinn.apps.colorization.defaults import DEFAULT_TEMPERATURE as COLOR_TEMPERATURE
from cinn.apps.inpainting import DEFAULT_TEMPERATURE as INPAINT_TEMPERATURE
from cinn.apps.superres import DEFAULT_TEMPERATURE as SR_TEMPERATURE
from cinn.errors import CinnError

#: every model call shares this queue (``concurrency_limit=1``)
QUEUE = "cinn-models"
#: requests that may wait in the queue (``cinn demo --max-queue``); past it the page
#: answers at once that the server is busy and when to try again
MAX_QUEUE = 16
#: the time a request is expected to take before any has been timed (seconds)
FIRST_GUESS_S = 10.0
#: uploads above this size are refused by the page itself
MAX_FILE_SIZE = "25mb"
#: result files older than this (seconds) are deleted
KEEP_RESULTS_S = 3600

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",   # no analytics, no version check
    "GRADIO_SSR_MODE": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def offline_environment():
    """Switch off every call Gradio would make to the internet (call before
    importing it)."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


def limits_text():
    lim = {k: v[1] for k, v in jobs.LIMITS.items()}
    return (f"Limits: colorization up to {lim['colorization']} pixels, super-resolution "
            f"inputs up to {lim['superres4']} (4x) or {lim['superres8']} (8x), inpainting up "
            f"to {lim['inpainting']}; N up to {jobs.MAX_SAMPLES}; files up to "
            f"{MAX_FILE_SIZE.upper()}.")


# -- example pictures (scikit-image ships them: no download) ---------------------------
def write_examples(folder):
    """Small copies of scikit-image's pictures for the Examples rows:
    ``{"colorization": [...], "superres4": [...], "superres8": [...], "inpainting": [...]}``."""
    import cv2
    import skimage.data

    from cinn.apps.common.images import write_image
    from cinn.apps.superres.resize import make_lr

    folder = Path(folder)

    def pic(name, side):
        img = np.asarray(getattr(skimage.data, name)())[..., :3]
        scale = side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img)

    out = {"colorization": [], "superres4": [], "superres8": [], "inpainting": []}
    for name in ("astronaut", "coffee", "chelsea"):
        out["colorization"].append(str(write_image(folder / "colorization" / f"{name}.png",
                                                   pic(name, 256))))
        out["inpainting"].append(str(write_image(folder / "inpainting" / f"{name}.png",
                                                 pic(name, 256))))
    for name in ("astronaut", "chelsea"):
        for scale in (4, 8):
            hr = pic(name, 512)
            hr = hr[:hr.shape[0] - hr.shape[0] % scale, :hr.shape[1] - hr.shape[1] % scale]
            out[f"superres{scale}"].append(str(write_image(
                folder / f"superres{scale}" / f"{name}_lr{scale}.png", make_lr(hr, scale))))
    return out


# -- results as PNG files ----------------------------------------------------------------
class ResultFiles:
    """Each request's pictures as PNG files in a folder of their own (downloads
    keep these names); folders older than ``KEEP_RESULTS_S`` are removed."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()

    def _new_folder(self):
        with self._lock:
            self._count += 1
            count = self._count
        now = time.time()
        for old in self.root.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > KEEP_RESULTS_S:
                shutil.rmtree(old, ignore_errors=True)
        folder = self.root / f"{count:06d}"
        folder.mkdir()
        return folder

    def write(self, result):
        """-> (gallery [(path, caption)], std map path, grid path, all paths)."""
        from cinn.apps.common.images import write_image

        folder = self._new_folder()
        name = result.name

        def png(suffix, img):
            return str(write_image(folder / f"{name}_{suffix}.png", img))

        gallery = [(png(caption.replace(" ", "_"), img), caption)
                   for caption, img in result.before]
        samples = [png(f"sample{k + 1}", s) for k, s in enumerate(result.samples)]
        gallery += [(p, f"sample {k + 1}") for k, p in enumerate(samples)]
        gallery += [(png(caption.replace(" ", "_"), img), caption)
                    for caption, img in result.after]
        std = png("std", result.std_image)
        grid = png("grid", result.grid)
        return gallery, std, grid, [grid, std] + samples


# -- errors ------------------------------------------------------------------------------
def _page_error(gr, err):
    """An exception -> ``gr.Error`` shown in the page (the server goes on)."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, CinnError):
        return gr.Error(str(err), duration=30, title="Bad input", print_exception=False)
    if isinstance(err, MemoryError):
        return gr.Error("Out of memory: try a smaller image or fewer samples.", duration=30)
    traceback.print_exc()
    return gr.Error(f"Something went wrong ({type(err).__name__}: {err}); the server is "
                    "still running, try again with other input.", duration=30)


def guard_upload(gr, component, limit_key, what):
    """Gradio decodes an upload before our code sees it: turn its failure on a
    corrupt, non-image or enormous file into a clear message in the page."""
    from PIL import Image

    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except Exception as err:  # noqa: BLE001 - any decoder failure means: not an image
            name = getattr(payload, "orig_name", None) or "the file"
            message = (jobs.too_large_message(name, limit_key, what)
                       if isinstance(err, Image.DecompressionBombError) else
                       f"{name} is not a readable image (corrupt file or unsupported "
                       "format); upload a PNG, JPEG, BMP, TIFF or WebP picture.")
            raise gr.Error(message, duration=30, title="Bad input",
                           print_exception=False) from None

    component.preprocess = checked
    return component


# -- the queue limit -----------------------------------------------------------------------
class RequestTimes:
    """How long the model requests take (a running mean), for the busy message."""

    def __init__(self, first_guess=FIRST_GUESS_S):
        self.mean, self.count = float(first_guess), 0
        self._lock = threading.Lock()

    def add(self, seconds):
        with self._lock:
            self.count += 1
            weight = max(1.0 / self.count, 0.1)   # the mean, then the recent ones more
            self.mean += weight * (float(seconds) - self.mean)

    def retry_after(self):
        """Seconds after which the queue is likely to have room again: the time of two
        requests (the one running and the next) at the mean, rounded up to 5 s."""
        return max(5, 5 * int(-(-(2 * self.mean) // 5)))


def busy_message(waiting, max_queue, retry_after_s):
    """What the page says to a request past the queue limit."""
    when = (f"about {retry_after_s} s" if retry_after_s < 120 else
            f"about {-(-retry_after_s // 60)} minutes")
    queued = "1 request is" if waiting == 1 else f"{waiting} requests are"
    return (f"The server is busy: {queued} waiting, the most this demo queues "
            f"({max_queue}). Please try again in {when}.")


def limit_queue(demo, max_queue, times):
    """Past ``max_queue`` waiting requests, refuse a new one at once with
    ``busy_message`` (shown in the page; HTTP 400 with that text as ``detail``)
    rather than Gradio's bare "busy" (``demo.queue(max_size=...)`` stays as the
    limit if this Gradio's queue cannot be wrapped). Returns whether it wrapped."""
    queue = getattr(demo, "_queue", None)
    push = getattr(queue, "push", None)
    if push is None:
        return False

    async def push_or_refuse(*args, **kwargs):
        waiting = len(queue)
        if waiting >= max_queue:
            return False, busy_message(waiting, max_queue, times.retry_after()), "error"
        return await push(*args, **kwargs)

    queue.push = push_or_refuse
    return True


# -- the page ----------------------------------------------------------------------------
INTRO = """# cinn: many plausible answers for one input
A conditional invertible network (cINN) gives not one answer but a distribution:
each run draws **N samples**. The **uncertainty map** is the per-pixel standard
deviation across the N samples (black: all samples agree; yellow: they differ most).
Higher **temperature** gives more varied samples; the same **seed** gives the same
samples. The colorization model draws each colouring's overall colour itself (its
global latents, at the temperature; the local ones at 0.5); the box adds a post-hoc
saturation and hue draw per colouring (**global colour draws**, off by default).
Everything runs on this machine."""


def _controls(gr, prefix, n, temperature):
    n = gr.Slider(1, jobs.MAX_SAMPLES, value=n, step=1, label="N (samples)",
                  elem_id=f"{prefix}-n")
    temperature = gr.Slider(0.0, 1.5, value=temperature, step=0.05, label="temperature",
                            elem_id=f"{prefix}-temperature")
    seed = gr.Number(value=0, precision=0, label="seed", elem_id=f"{prefix}-seed")
    return n, temperature, seed


def _outputs(gr, prefix, what):
    info = gr.Markdown(elem_id=f"{prefix}-info")
    gallery = gr.Gallery(label=what, columns=4, height="auto", format="png",
                         object_fit="contain", buttons=["download", "fullscreen"],
                         elem_id=f"{prefix}-gallery")
    with gr.Row():
        std = gr.Image(label="uncertainty map (per-pixel std across the N samples)",
                       format="png", interactive=False, buttons=["download", "fullscreen"],
                       height=300, elem_id=f"{prefix}-std", elem_classes=["cinn-std"])
        files = gr.File(label="downloads (PNG): all in one picture, the uncertainty map, "
                        "each sample", file_count="multiple", interactive=False, height=300,
                        elem_id=f"{prefix}-files")
    return [info, gallery, std, files]


def _respond(files, result, compare=False):
    gallery, std, _, paths = files.write(result)
    out = [result.info, gallery, std, paths]
    if compare:  # the full-size comparison: the first picture (bicubic) | sample 1
        out.append((gallery[0][0], gallery[1][0]))
    return out


def build(models, workdir, max_queue=MAX_QUEUE):
    """The Gradio ``Blocks`` of the demo for loaded ``models`` (see
    ``jobs.load_models``); example pictures and result files go to ``workdir``; at
    most ``max_queue`` requests wait (``limit_queue``)."""
    offline_environment()
    workdir = Path(workdir)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "gradio"))  # uploads there too
    import gradio as gr

    max_queue = int(max_queue)
    if max_queue < 1:
        raise CinnError(f"--max-queue must be at least 1, got {max_queue}")
    examples = write_examples(workdir / "examples")
    files = ResultFiles(workdir / "results")
    times = RequestTimes()

    def run(job, compare=False):
        def handler(*args, progress=gr.Progress()):
            start = time.time()
            try:
                return _respond(files, job(*args, progress=progress), compare)
            except Exception as err:  # noqa: BLE001 - every failure becomes a page message
                raise _page_error(gr, err) from None
            finally:
                times.add(time.time() - start)
        return handler

    def colorize(path, n, temperature, seed, colour_draws=False, progress=None):
        return jobs.colorize_job(models["colorization"], path, n, temperature, seed,
                                 bool(colour_draws), progress)

    def superres(path, scale, n, temperature, seed, progress=None):
        return jobs.superres_job(models, path, int(str(scale).rstrip("x")), n, temperature,
                                 seed, progress)

    def inpaint(editor, box, n, temperature, seed, progress=None):
        image, brush = jobs.editor_parts(editor)
        return jobs.inpaint_job(models["inpainting"], image, brush, box, n, temperature, seed,
                                progress=progress)

    scales = ["4x"] + (["8x"] if "superres8" in models else [])
    with gr.Blocks(title="cinn demo", analytics_enabled=False,
                   delete_cache=(KEEP_RESULTS_S, KEEP_RESULTS_S)) as demo:
        gr.Markdown(INTRO + "\n\n" + limits_text(), elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Colorization", id="colorization", elem_id="tab-colorization"):
                with gr.Row():
                    with gr.Column(scale=1):
                        inp = guard_upload(gr, gr.Image(
                            type="filepath", image_mode=None, sources=["upload", "clipboard"],
                            label="photo (colour or grey; only its lightness is used)",
                            elem_id="col-input"), "colorization", "colorization")
                        gr.Examples([[p] for p in examples["colorization"]], inputs=inp,
                                    label="or one of scikit-image's photos")
                        ctl = _controls(gr, "col", 4, COLOR_TEMPERATURE)
                        ctl += (gr.Checkbox(
                            value=False, label="also vary each colouring's saturation and hue "
                            "after sampling (global colour draws)", elem_id="col-draws"),)
                        button = gr.Button("Colorize", variant="primary", elem_id="col-run")
                    with gr.Column(scale=2):
                        out = _outputs(gr, "col", "grey input | N colourings | original")
                button.click(run(colorize), [inp, *ctl], out, concurrency_id=QUEUE,
                             concurrency_limit=1, api_name="colorize")
            with gr.Tab("Super-resolution", id="superres", elem_id="tab-superres"):
                with gr.Row():
                    with gr.Column(scale=1):
                        inp = guard_upload(gr, gr.Image(
                            type="filepath", image_mode=None, sources=["upload", "clipboard"],
                            label="low-resolution image", elem_id="sr-input"),
                            "superres4", "super-resolution")
                        scale = gr.Radio(scales, value="4x", label="scale", elem_id="sr-scale")
                        gr.Examples([[p, "4x"] for p in examples["superres4"]]
                                    + ([[p, "8x"] for p in examples["superres8"]]
                                       if "superres8" in models else []),
                                    inputs=[inp, scale],
                                    label="or a downscaled scikit-image photo")
                        ctl = _controls(gr, "sr", 4, SR_TEMPERATURE)
                        button = gr.Button("Upscale", variant="primary", elem_id="sr-run")
                    with gr.Column(scale=2):
                        out = _outputs(gr, "sr", "bicubic | N samples | their mean "
                                       "(click one, then full screen, to see it at full size)")
                        compare = gr.ImageSlider(label="compare at full size: bicubic | "
                                                 "sample 1 (drag the slider)", format="png",
                                                 interactive=False, elem_id="sr-compare")
                button.click(run(superres, compare=True), [inp, scale, *ctl], out + [compare],
                             concurrency_id=QUEUE, concurrency_limit=1, api_name="superres")
            with gr.Tab("Inpainting", id="inpainting", elem_id="tab-inpainting"):
                with gr.Row():
                    with gr.Column(scale=1):
                        editor = guard_upload(gr, gr.ImageEditor(
                            type="numpy", sources=["upload", "clipboard"], layers=False,
                            transforms=(), label="image: paint the hole with the brush",
                            brush=gr.Brush(default_size="auto", colors=["#ff00ff"],
                                           color_mode="fixed"),
                            eraser=gr.Eraser(default_size="auto"), elem_id="inp-input"),
                            "inpainting", "inpainting")
                        gr.Examples([[p] for p in examples["inpainting"]], inputs=editor,
                                    label="or one of scikit-image's photos")
                        box = gr.Textbox(label="or a box: x,y,w,h (pixels; added to the "
                                         "painted hole)", placeholder="e.g. 100,60,80,60",
                                         elem_id="inp-box")
                        ctl = _controls(gr, "inp", 4, INPAINT_TEMPERATURE)
                        button = gr.Button("Fill the hole", variant="primary",
                                           elem_id="inp-run")
                    with gr.Column(scale=2):
                        out = _outputs(gr, "inp", "masked input | N completions")
                button.click(run(inpaint), [editor, box, *ctl], out, concurrency_id=QUEUE,
                             concurrency_limit=1, api_name="inpaint")
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    limit_queue(demo, max_queue, times)
    return demo


#: small results are drawn larger; the uncertainty map keeps its pixels sharp
CSS = """
.cinn-std img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
"""


def launch(demo, host, port, workdir, block=True):
    """Serve ``demo`` at http://host:port: until interrupted, or in the background
    with ``block=False`` (then ``demo.close()`` stops it)."""
    demo.launch(server_name=host, server_port=int(port), share=False, inbrowser=False,
                prevent_thread_lock=not block,
                show_error=True, max_file_size=MAX_FILE_SIZE, allowed_paths=[str(workdir)],
                ssr_mode=False, mcp_server=False, pwa=False, quiet=False,
                footer_links=[], css=CSS)


def make_workdir():
    return Path(tempfile.mkdtemp(prefix="cinn-demo-"))
