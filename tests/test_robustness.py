"""Any photo a user has (issue 16): bounded memory, no crash, no silent wrong answer.

One test (or more) per row of the issue's table, through the command line's entry
point ``cinn.cli.main`` in this process, with tiny models (every picture pads to
16x16, so JAX compiles few shapes).
"""
import io
import math
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from cinn.cli import main
from cinn.apps.common.images import read_image, write_image
from helpers import tiny_app_models

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``{app: (model, path of its .keras file)}``, tiny and randomised."""
    return tiny_app_models(tmp_path_factory.mktemp("models"))


def picture(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def one_error(capfd, *words):
    """stderr holds exactly one line, ``cinn: error: ...``, with ``words`` in it."""
    err = capfd.readouterr().err.strip()
    assert err.startswith("cinn: error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err


def cli(app, models, image, out, *extra):
    command = {"colorization": "colorize", "inpainting": "inpaint", "superres": "superres"}
    argv = [command[app], str(image), "-n", "2", "-o", str(out), "--weights",
            str(models[app][1]), *extra]
    if app == "inpainting" and "--mask" not in extra:
        argv += ["--box", "2,2,6,5"]
    return main(argv)


# -- memory: condition features once, chunks change nothing, a pixel budget ---------
def test_condition_features_computed_once_and_chunks_change_nothing(models):
    model = models["inpainting"][0]
    c = np.random.default_rng(0).random((1, 16, 16, 4)).astype("float32") - 0.5
    calls = []
    original = model.condition_features
    model.condition_features = lambda cond: calls.append(1) or original(cond)
    try:
        chunks = [np.asarray(x) for x in model.sample_chunks(c, n=5, temperature=0.8, seed=3,
                                                              batch_size=2, bit_stable=True)]
    finally:
        del model.condition_features
    assert len(calls) == 1 and [len(x) for x in chunks] == [2, 2, 1]
    ref = np.concatenate(chunks)
    for batch_size in (1, 3, None):
        again = np.asarray(model.sample(c, n=5, temperature=0.8, seed=3,
                                        batch_size=batch_size, bit_stable=True))[0]
        assert np.array_equal(again, ref)
    first = np.asarray(model.sample(c, n=1, temperature=0.8, seed=3, bit_stable=True))[0]
    assert np.array_equal(first, ref[:1])         # sample k does not depend on n


def test_same_seed_same_bytes_whatever_the_chunk_size(models):
    from cinn.apps.inpainting.infer import inpaint
    from cinn.apps.inpainting.masks import box_mask

    rgb, mask = picture(16, 16, 4), box_mask((16, 16), (3, 3, 8, 7))
    a = inpaint(models["inpainting"][0], rgb, mask, n=3, seed=11, batch_size=1)
    b = inpaint(models["inpainting"][0], rgb, mask, n=3, seed=11, batch_size=3)
    assert np.array_equal(a, b)


def test_pixel_budget_is_a_clear_error(models, tmp_path, capfd):
    img = write_image(tmp_path / "big.png", picture(40, 50))
    assert cli("colorization", models, img, tmp_path / "out", "--max-megapixels",
               "0.001") == 1
    one_error(capfd, "50x40", "limit of 0.001", "--max-megapixels 1")
    assert not (tmp_path / "out").exists()


# -- reading photos as a viewer shows them --------------------------------------------
def exif_png(path, rgb, orientation):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes())
    return path


def test_exif_orientation_and_box_in_viewer_coordinates(models, tmp_path):
    stored = picture(12, 16, 1)                                # 16 wide, 12 high
    path = exif_png(tmp_path / "phone.png", stored, 6)         # viewer: rotate 90 cw
    shown = np.rot90(stored, -1)
    assert np.array_equal(read_image(path), shown)             # 12 wide, 16 high
    out = tmp_path / "out"
    assert main(["inpaint", str(path), "--box", "2,9,6,5", "-n", "2", "-o", str(out),
                 "--weights", str(models["inpainting"][1]), "--save-samples"]) == 0
    sample = read_image(out / "phone_sample0.png")
    assert sample.shape == (16, 12, 3)
    hole = np.zeros((16, 12), bool)
    hole[9:14, 2:8] = True
    assert np.array_equal(sample[~hole], shown[~hole])
    assert not np.array_equal(sample[hole], shown[hole])


def test_float_tiff_in_0_1_is_scaled(tmp_path):
    grey = np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10)
    rgb = np.stack([grey, grey * 0.5, 1 - grey], axis=-1)
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    img = read_image(path)
    assert np.abs(img.astype(float) - rgb * 255).max() <= 0.5001
    assert img.max() == 255


def test_sixteen_bit_is_scaled(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(2, axis=0)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), values)
    assert read_image(path)[0, :, 0].tolist() == [0, 1, 128, 255]


def test_transparency_is_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200                          # red
    rgba[:2, :, 3] = 255                        # top half opaque, bottom transparent
    rgba[2, :, 3] = 128                         # one row half transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img = read_image(path)
    assert img[0, 0].tolist() == [200, 0, 0]
    assert img[3, 0].tolist() == [255, 255, 255]
    assert img[2, 0].tolist() == [227, 127, 127]    # 200 a + 255 (1 - a), a = 128/255


def test_animated_image_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 200, 90)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    img = read_image(path)
    assert img.shape == (6, 8, 3) and abs(int(img.mean()) - 10) <= 2


def test_truncated_png_is_one_line(models, tmp_path, capfd):
    data = io.BytesIO()
    Image.fromarray(picture(32, 32)).save(data, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data.getvalue()[:len(data.getvalue()) // 2])
    capfd.readouterr()
    assert cli("colorization", models, path, tmp_path / "out") == 1
    one_error(capfd, "cut.png", "not a readable image")


# -- checks before any work -------------------------------------------------------------
@pytest.mark.parametrize("app", ["colorization", "inpainting", "superres"])
def test_out_is_an_existing_file(models, app, tmp_path, capfd):
    img = write_image(tmp_path / "in.png", picture(8, 8))
    target = tmp_path / "taken"
    target.write_text("mine")
    capfd.readouterr()
    # the weights do not exist either: the -o check comes first (before any work)
    argv = {"colorization": ["colorize"], "superres": ["superres"],
            "inpainting": ["inpaint", "--box", "1,1,3,3"]}[app]
    assert main(argv + [str(img), "-o", str(target), "--weights",
                        str(tmp_path / "none.keras")]) == 1
    one_error(capfd, "taken", "not a folder")
    assert target.read_text() == "mine"


def test_two_inputs_with_one_name_write_two_files(models, tmp_path, capfd):
    rgb = picture(8, 8, 2)
    a = tmp_path / "img.webp"
    b = tmp_path / "img.bmp"
    assert cv2.imwrite(str(a), rgb, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert cv2.imwrite(str(b), rgb[::-1].copy())
    out = tmp_path / "out"
    assert main(["colorize", str(a), str(b), "-n", "1", "-o", str(out), "--weights",
                 str(models["colorization"][1])]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img_2_colorized.png",
                                                     "img_colorized.png"]
    assert "img_2" in capfd.readouterr().err


@pytest.mark.parametrize("option,value,word", [
    ("--temperature", "inf", "temperature"), ("--temperature", "nan", "temperature"),
    ("--temperature", "-0.5", "temperature"), ("--temperature", "1e9", "temperature"),
    ("-n", "0", "-n"), ("-n", "100000", "-n"),
    ("--seed", str(2 ** 70), "--seed"), ("--seed", "-1", "--seed")])
@pytest.mark.parametrize("app", ["colorization", "inpainting", "superres"])
def test_sampling_options_are_checked(models, app, option, value, word, tmp_path, capfd):
    img = write_image(tmp_path / "in.png", picture(8, 8))
    argv = {"colorization": ["colorize"], "superres": ["superres"],
            "inpainting": ["inpaint", "--box", "1,1,3,3"]}[app]
    assert main(argv + [str(img), option, value, "-o", str(tmp_path / "out")]) == 1
    one_error(capfd, word)
    assert not (tmp_path / "out").exists()


def test_library_checks_the_same_ranges(models):
    from cinn.apps.colorization.infer import colorize
    from cinn.errors import CinnError
    from cinn.sampling import check_sampling

    for bad in ({"temperature": math.inf}, {"temperature": math.nan}, {"n": 0},
                {"seed": 2 ** 70}, {"seed": -3}, {"n": 2.5}):
        with pytest.raises(CinnError):
            check_sampling(**bad)
        with pytest.raises(CinnError):
            colorize(models["colorization"][0], picture(8, 8), **bad)
    assert check_sampling(3, 0.5, 7) == (3, 0.5, 7)


def test_weights_wrong_app_corrupt_missing(models, tmp_path, capfd):
    img = write_image(tmp_path / "in.png", picture(8, 8))
    out = tmp_path / "out"
    messages = []
    corrupt = tmp_path / "corrupt.keras"
    data = models["inpainting"][1].read_bytes()
    corrupt.write_bytes(data[:len(data) // 2])
    from cinn.apps.common.pretrained import default_weights

    for weights, words in ((default_weights("superres"), ("holds a model for superres",
                                                    "not for inpainting")),
                           (corrupt, ("corrupt",)),
                           (tmp_path / "missing.keras", ("no such model file",))):
        assert main(["inpaint", str(img), "--box", "1,1,3,3", "-o", str(out),
                     "--weights", str(weights)]) == 1
        messages.append(one_error(capfd, *words))
        assert len(messages[-1]) < 300
    assert len(set(m.split(": ", 2)[2] for m in messages)) == 3


def test_export_refuses_a_non_empty_folder(tmp_path, capfd):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    assert main(["export", "inpainting", "--out", str(folder)]) == 1
    one_error(capfd, "not empty", "--overwrite")
    # with --overwrite the command goes on (here to the missing weights)
    assert main(["export", "inpainting", "--out", str(folder), "--overwrite",
                 "--weights", str(tmp_path / "none.keras")]) == 1
    one_error(capfd, "no such model file")
    assert (folder / "notes.txt").read_text() == "keep"


def test_strip_features_equal_one_pass(models):
    from keras import ops

    from cinn.apps.common.tiling import strip_features

    model = models["inpainting"][0]
    c = np.random.default_rng(5).random((1, 64, 12, 4)).astype("float32") - 0.5
    full = [np.asarray(ops.convert_to_numpy(f)) for f in model.condition_features(c)]
    strips = strip_features(model, c, rows=32, halo=16, min_pixels=0)   # 2 strips of 48
    assert [f.shape for f in strips] == [f.shape for f in full]
    for a, b in zip(strips, full):
        assert np.abs(a - b).max() <= 1e-5
    assert strip_features(model, c) is None                   # small: one pass


def test_version_names_cinn_and_its_frameworks(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    line = capsys.readouterr().out
    assert line.startswith(f"cinn {version('cinn')} (Keras {version('keras')}, ")
    assert line.count("\n") == 1


# -- answers before Keras: usage errors and file checks, -o made first ---------------------
def test_usage_errors_answer_before_keras_is_imported(models, tmp_path):
    """Each usage error or bad file is one ``cinn: error:`` line, given before Keras
    or TensorFlow is imported (importing them takes seconds and most of a GB)."""
    import json
    import subprocess
    import sys

    img = write_image(tmp_path / "in.png", picture(12, 16))
    mask = write_image(tmp_path / "mask.png", picture(5, 5))
    (tmp_path / "taken").write_text("mine")
    weights = str(models["inpainting"][1])
    out = str(tmp_path / "out")
    cases = [
        (["colorize", str(tmp_path / "missing.png")], "no such file"),
        (["colorize", str(img), "-n", "0"], "-n"),
        (["colorize", str(img), "--temperature", "nan"], "temperature"),
        (["colorize", str(img), "--saturation", "1", "1e300"], "--saturation"),
        (["colorize", str(img), "--hue", "400"], "--hue"),
        (["colorize", str(img), "--max-megapixels", "0.0001", "-o", out], "megapixels"),
        (["superres", str(tmp_path), "-o", out], "is a folder"),
        (["inpaint", str(img), "--box", "1,2"], "--box"),
        (["inpaint", str(img), "--box", "20,2,3,3"], "starts outside"),
        (["inpaint", str(img), "--mask", str(mask)], "same size"),
        (["inpaint", str(img), "--box", "1,1,3,3", "-o", str(tmp_path / "taken")],
         "not a folder"),
        (["inpaint", str(img), "--box", "1,1,3,3", "-o", out, "--weights",
          str(tmp_path / "none.keras")], "no such model file"),
        (["train", "inpainting", "--data", str(tmp_path / "nowhere")], "no such folder"),
        (["train", "inpainting", "--data", str(tmp_path), "--epochs", "0",
          "--out", out], "--epochs"),
        (["evaluate", "inpainting", "--data", str(tmp_path / "nowhere")], "no such folder"),
        (["evaluate", "inpainting", "--data", str(tmp_path), "--weights",
          str(tmp_path / "none.keras"), "-o", out], "no such model file"),
        (["demo", "--port", "0"], "--port"),
        (["demo", "--max-queue", "0"], "--max-queue"),
    ]
    script = (
        "import json, sys\n"
        "from cinn.cli import main\n"
        "argv, heavy = json.loads(sys.argv[1]), ('keras', 'tensorflow', 'jax')\n"
        "rc = main(argv)\n"
        "print(json.dumps([rc, [m for m in heavy if m in sys.modules]]))\n")
    for argv, word in cases:
        run = subprocess.run([sys.executable, "-c", script, json.dumps(argv)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        rc, imported = json.loads(run.stdout.strip().splitlines()[-1])
        err = run.stderr.strip()
        assert rc == 1 and err.startswith("cinn: error: ") and "\n" not in err, (argv, err)
        assert word in err, (argv, err)
        assert imported == [], (argv, imported)
    assert (tmp_path / "taken").read_text() == "mine"


def test_saturation_has_a_bound(models, tmp_path, capfd):
    img = write_image(tmp_path / "in.png", picture(8, 8))
    out = tmp_path / "out"
    assert main(["colorize", str(img), "-n", "8", "--saturation", "1", "1e300", "-o", str(out),
                 "--weights", str(models["colorization"][1])]) == 1
    one_error(capfd, "--saturation", "<= 10")
    assert not out.exists()
    assert main(["colorize", str(img), "-n", "2", "--saturation", "1", "10", "-o", str(out),
                 "--weights", str(models["colorization"][1])]) == 0
    assert "Warning" not in capfd.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux' /proc")
def test_out_folder_is_made_and_written_to_before_any_work(models, tmp_path, capfd):
    """Even root, whom a permission check lets through, learns at once that -o
    cannot hold the results (a folder in /proc cannot be made), with the option
    named; a folder that can be made is made, and no probe file is left in it."""
    img = write_image(tmp_path / "in.png", picture(8, 8))
    assert main(["colorize", str(img), "-o", "/proc/self/cinn-out",
                 "--weights", str(models["colorization"][1])]) == 1
    one_error(capfd, "-o /proc/self/cinn-out", "cannot")
    out = tmp_path / "deep" / "new" / "out"
    assert main(["colorize", str(img), "-n", "1", "-o", str(out),
                 "--weights", str(models["colorization"][1])]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in_colorized.png"]


def test_box_past_the_edge_is_cut_with_a_note(models, tmp_path, capfd):
    img = write_image(tmp_path / "in.png", picture(12, 16))
    out = tmp_path / "out"
    assert main(["inpaint", str(img), "--box", "4,6,100,100", "-n", "1", "-o", str(out),
                 "--weights", str(models["inpainting"][1])]) == 0
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["cinn: note: --box 4,6,100,100 runs past the edge of the 16x12 image: "
                   "cut to 4,6,12,6"], err
    assert main(["inpaint", str(img), "--box", "4,6,12,6", "-n", "1", "-o", str(out),
                 "--weights", str(models["inpainting"][1])]) == 0
    assert capfd.readouterr().err == ""                   # inside: no note


def test_evaluate_colorization_on_greyscale_images_says_why(models, tmp_path, capfd):
    folder = tmp_path / "grey"
    folder.mkdir()
    for k in range(3):
        grey = picture(16, 16, k)[..., :1].repeat(3, axis=2)
        write_image(folder / f"grey{k}.png", grey)
    assert main(["evaluate", "colorization", "--data", str(folder), "-n", "2", "--weights",
                 str(models["colorization"][1]), "-o", str(tmp_path / "out")]) == 1
    one_error(capfd, "3 greyscale")


def test_strip_fill_equals_one_pass():
    """The inpainting app's learned fill (a U-Net with a global context) run in
    strips of its input gives the one pass's prediction, whatever the height's
    parity; what keeps ``cinn inpaint`` of a large hole in a large photo within
    its memory (docs/reliability.md)."""
    from cinn.apps.common.tiling import unet_radius
    from cinn.apps.inpainting.infer import StripFill
    from cinn.apps.inpainting.model import build_model
    from helpers import randomize

    net = build_model({"type": "regressor", "cond_widths": [4, 6]})  # a reach of 14 rows
    randomize(net, scale=0.05)
    assert unet_radius(net.cond_net) == 14
    rng = np.random.default_rng(3)
    for h, w in ((96, 20), (102, 18)):   # 48 and 51 rows for the U-Net: 3 strips
        c = rng.uniform(-0.5, 0.5, (1, h, w, 4)).astype("float32")
        c[..., 3] = rng.random((1, h, w)) < 0.4
        full = np.asarray(net.predict_residual(c))
        assert np.abs(full).max() > 0.01                         # something to compare
        strips = StripFill(net, min_pixels=0, rows=16).predict_residual(c)
        assert strips.shape == full.shape
        assert np.abs(strips - full).max() <= 1e-5 * max(1.0, np.abs(full).max())
