"""SavedModel export (``cinn.export``, ``cinn export APP``).

The export is reloaded in a fresh Python process that imports only TensorFlow
and NumPy: ``keras`` and ``cinn`` are made unimportable there (``import
tensorflow`` would otherwise load Keras itself), so the test proves a server
needs neither. The exported model is saved under the JAX backend (in a
subprocess) and exported under TensorFlow: the train-on-JAX, export-on-TF workflow.
"""
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import to_np

tf = pytest.importorskip("tensorflow")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
on_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                           reason="SavedModel export runs on the TensorFlow backend")

TEMPERATURE = 0.7
SEED = 11


def tiny_model():
    """A 4x 'super-resolution' flow: Haar levels, injector, learned prior split,
    random permutation, and a condition net that upsamples (dynamic shapes)."""
    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    sub = {"hidden": 8, "depth": 1}
    levels = [{"downsample": "haar", "blocks": 1, "injector": True, "split": "prior",
               "subnet": sub},
              {"downsample": "haar", "blocks": 1, "permute": "random", "subnet": sub}]
    return ConditionalINN((None, None, 2), (None, None, 1), levels, upscale=4, seed=0,
                          cond_net=ConditionNet([1, 0], channels=4, hidden=8,
                                                trunk_blocks=1))


def inputs():
    """Two sizes: conditions 3x5 and 4x4 (x: 12x20 and 16x16), batches 2 and 1."""
    rng = np.random.default_rng(0)
    out = {}
    for k, (b, n, h, w) in enumerate([(2, 3, 3, 5), (1, 2, 4, 4)]):
        out[f"c{k}"] = rng.standard_normal((b, h, w, 1)).astype("float32")
        out[f"x{k}"] = rng.standard_normal((b, 4 * h, 4 * w, 2)).astype("float32")
        out[f"z{k}"] = rng.standard_normal((b, n, 16 * h * w * 2)).astype("float32")
    return out


JAX_SAVE = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, {tests!r})
import keras, numpy as np
from helpers import randomize, to_np
{source}
model = tiny_model()
randomize(model, 0.05, seed=1)
data = dict(np.load({inputs!r}))
np.savez({out!r}, log_prob0=to_np(model.log_prob(data["x0"], data["c0"])))
model.save({path!r})
print(keras.backend.backend())
"""

# The serving process: TensorFlow and NumPy only (keras and cinn cannot be imported).
RELOAD = """
import contextlib, io, json, sys

HIDDEN = ("keras", "cinn")
for name in HIDDEN:
    sys.modules[name] = None  # `import keras` fails, find_spec("keras") is None
import numpy as np
import tensorflow as tf

export_dir, inputs_path, out_path, cli_path = sys.argv[1:5]
data = dict(np.load(inputs_path))
loaded = tf.saved_model.load(export_dir)
sig = loaded.signatures
out = {}
for k in "01":
    c = tf.constant(data["c" + k])
    out["sample" + k] = sig["sample"](condition=c, z=tf.constant(data["z" + k]),
                                      temperature=tf.constant(%(temp)r))["x"]
    out["log_prob" + k] = sig["log_prob"](x=tf.constant(data["x" + k]), condition=c)["log_prob"]
    enc = sig["encode"](x=tf.constant(data["x" + k]), condition=c)
    out["z_of_x" + k], out["log_det" + k] = enc["z"], enc["log_det"]
seeded = sig["sample_seeded"](condition=tf.constant(data["c0"]), num_samples=tf.constant(2),
                              temperature=tf.constant(%(temp)r),
                              seed=tf.constant(%(seed)r, tf.int64))
out["seeded_x"], out["seeded_z"] = seeded["x"], seeded["z"]
info = {k: np.asarray(v.numpy()).item() for k, v in sig["info"]().items()}
info["app"] = info["app"].decode()
np.savez(out_path, **{k: v.numpy() for k, v in out.items()})

# the real `saved_model_cli show --dir DIR --all`
from tensorflow.python.tools import saved_model_cli
buf = io.StringIO()
sys.argv = ["saved_model_cli", "show", "--dir", export_dir, "--all"]
with contextlib.redirect_stdout(buf):
    try:
        saved_model_cli.main()
    except SystemExit:
        pass
with open(cli_path, "w") as f:
    f.write(buf.getvalue())
bad = sorted(m for m, mod in sys.modules.items()
             if m.split(".")[0] in HIDDEN and mod is not None)
print(json.dumps({"signatures": sorted(sig), "info": info, "modules": bad}))
""" % {"temp": TEMPERATURE, "seed": SEED}


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def jax_saved(tmp_path_factory):
    """A tiny model saved under KERAS_BACKEND=jax (in a subprocess), its JAX
    log-density, and the test inputs (without JAX: saved here, on TensorFlow)."""
    tmp = tmp_path_factory.mktemp("export")
    np.savez(tmp / "inputs.npz", **inputs())
    if importlib.util.find_spec("jax") is None:
        from helpers import randomize

        model = tiny_model()
        randomize(model, 0.05, seed=1)
        model.save(tmp / "tiny.keras")
        return tmp
    script = JAX_SAVE.format(tests=str(TESTS), source=inspect.getsource(tiny_model),
                             inputs=str(tmp / "inputs.npz"), out=str(tmp / "jax.npz"),
                             path=str(tmp / "tiny.keras"))
    # JAX compiles every eager op on CPU; without the optimisation passes that is
    # 3-4x cheaper (this process only builds, evaluates once and saves)
    flags = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS=flags),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "jax"
    return tmp


@pytest.fixture(scope="module")
def exported(jax_saved):
    """The JAX-saved model loaded under TensorFlow, exported, and reloaded in a
    fresh TensorFlow-only process; returns (model, inputs, outputs, report, cli text)."""
    import cinn
    from cinn.export import export_model

    tmp = jax_saved
    model = cinn.load_model(tmp / "tiny.keras")
    names = export_model(model, tmp / "saved")
    assert names[0] == "sample"
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp / "saved"), str(tmp / "inputs.npz"),
         str(tmp / "out.npz"), str(tmp / "cli.txt")],
        capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return (model, dict(np.load(tmp / "inputs.npz")), dict(np.load(tmp / "out.npz")),
            report, (tmp / "cli.txt").read_text())


@on_tf
def test_serving_process_needs_neither_keras_nor_cinn(exported):
    _, _, _, report, _ = exported
    assert report["modules"] == []
    assert {"sample", "sample_seeded", "encode", "log_prob", "info",
            "serving_default"} <= set(report["signatures"])
    assert report["info"] == {"app": "", "x_channels": 2, "condition_channels": 1,
                              "upscale": 4, "multiple": 4}


@on_tf
@pytest.mark.parametrize("k", ["0", "1"])
def test_reloaded_samples_and_densities_match_the_model(exported, k):
    model, data, out, _, _ = exported
    c, x, z = data["c" + k], data["x" + k], data["z" + k]
    b, n = z.shape[:2]
    expected = to_np(model.sample(c, n=n, z=z.reshape(b * n, -1), temperature=TEMPERATURE))
    assert out["sample" + k].shape == (b, n) + x.shape[1:]
    assert np.abs(out["sample" + k] - expected).max() <= 1e-4
    lp = to_np(model.log_prob(x, c))
    assert out["log_prob" + k].shape == (b,)
    np.testing.assert_allclose(out["log_prob" + k], lp, rtol=1e-5, atol=1e-3)
    zx, ld = model.encode(x, c)
    assert np.abs(out["z_of_x" + k] - to_np(zx)).max() <= 1e-4
    np.testing.assert_allclose(out["log_det" + k], to_np(ld), rtol=1e-5, atol=1e-3)


@on_tf
def test_weights_saved_under_jax_give_the_same_density_under_tensorflow(exported, jax_saved):
    _, _, out, _, _ = exported
    if not (jax_saved / "jax.npz").exists():
        pytest.skip("JAX is not installed")
    ref = np.load(jax_saved / "jax.npz")
    np.testing.assert_allclose(out["log_prob0"], ref["log_prob0"], rtol=1e-5, atol=1e-3)


@on_tf
def test_seeded_signature_draws_what_model_sample_draws_with_that_seed(exported):
    model, data, out, _, _ = exported
    c = data["c0"]
    assert out["seeded_z"].shape == (2, 2, 480) and out["seeded_x"].shape == (2, 2, 12, 20, 2)
    # on TensorFlow, keras.random.normal(seed=s) is tf.random.stateless_normal([s, 0])
    expected = to_np(model.sample(c, n=2, seed=SEED, temperature=TEMPERATURE))
    assert np.abs(out["seeded_x"] - expected).max() <= 1e-4
    again = to_np(model.sample(c, n=2, z=out["seeded_z"].reshape(4, -1),
                               temperature=TEMPERATURE))
    assert np.abs(out["seeded_x"] - again).max() <= 1e-4


@on_tf
def test_saved_model_cli_lists_the_signatures(exported):
    text = exported[4]
    for name in ("sample", "sample_seeded", "encode", "log_prob", "info", "serving_default"):
        assert f"signature_def['{name}']" in text, text[:2000]
    assert "shape: (-1, -1, -1, 1)" in text  # dynamic batch and spatial size


@on_tf
def test_unconditional_vector_flow_exports(tmp_path):
    from cinn import ConditionalINN
    from cinn.export import export_model
    from helpers import randomize

    model = ConditionalINN((4,), None, [{"blocks": 2, "subnet": {"hidden": 8}}], seed=0)
    randomize(model, 0.1)
    export_model(model, tmp_path / "saved")
    sig = tf.saved_model.load(str(tmp_path / "saved")).signatures
    z = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    x = sig["sample"](z=tf.constant(z), temperature=tf.constant(1.0))["x"].numpy()
    assert np.abs(x - to_np(model.sample(n=5, z=z))[0]).max() <= 1e-5
    lp = sig["log_prob"](x=tf.constant(x))["log_prob"].numpy()
    np.testing.assert_allclose(lp, to_np(model.log_prob(x)), rtol=1e-5, atol=1e-4)
    seeded = sig["sample_seeded"](num_samples=tf.constant(3), temperature=tf.constant(1.0),
                                  seed=tf.constant(3, tf.int64))
    assert seeded["x"].shape == (3, 4) and seeded["z"].shape == (3, 4)


# -- the command line ---------------------------------------------------------------
def _cli(argv, capsys):
    from cinn.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_cli_missing_weights_file_is_one_line(tmp_path, capsys):
    code, err = _cli(["export", "colorization", "--weights", str(tmp_path / "nope.keras"),
                      "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.startswith("cinn: error:") and "no such model file" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors_answer_before_keras_is_imported(tmp_path):
    """Each bad ``cinn export`` command line is one ``cinn: error:`` line, given before
    Keras, TensorFlow or JAX is imported (as every other command's), and writes nothing."""
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"not checked before Keras")   # exists: the later checks run
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep")
    (tmp_path / "taken").write_text("mine")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    w = ["--weights", str(weights)]
    cases = [
        (["export", "nowhere", "--out", str(tmp_path / "o")], "invalid choice"),
        (["export", "inpainting"], "--out"),
        (["export", "inpainting", "--out", str(tmp_path / "o"), "--weights",
          str(tmp_path / "none.keras")], "no such model file"),
        (["export", "inpainting", "--out", str(tmp_path / "o"), "--weights",
          str(full)], "no such model file"),                 # a folder without model.keras
        (["export", "inpainting", "--out", str(tmp_path / "o"), "--scale", "8", *w],
         "superres only"),
        (["export", "superres", "--out", str(tmp_path / "o"), "--scale", "3", *w], "--scale"),
        (["export", "inpainting", "--out", str(tmp_path / "taken"), *w], "not a folder"),
        (["export", "inpainting", "--out", str(tmp_path / "taken" / "o"), *w], "not a folder"),
        (["export", "inpainting", "--out", str(full), *w], "--overwrite"),
    ]
    if os.geteuid() != 0:                                    # root writes anywhere
        cases.append((["export", "inpainting", "--out", str(locked / "o"), *w],
                       "cannot write"))
    script = (
        "import json, sys\n"
        "from cinn.cli import main\n"
        "argv, heavy = json.loads(sys.argv[1]), ('keras', 'tensorflow', 'jax')\n"
        "rc = main(argv)\n"
        "print(json.dumps([rc, [m for m in heavy if m in sys.modules]]))\n")
    try:
        for argv, word in cases:
            run = subprocess.run([sys.executable, "-c", script, json.dumps(argv)],
                                 capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                 env=_env())
            rc, imported = json.loads(run.stdout.strip().splitlines()[-1])
            err = run.stderr.strip()
            assert rc == 1 and err.startswith("cinn: error: ") and "\n" not in err, (argv, err)
            assert word in err, (argv, err)
            assert imported == [], (argv, imported)
    finally:
        locked.chmod(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "locked", "model.keras",
                                                          "taken"]
    assert [p.name for p in full.iterdir()] == ["notes.txt"] and not any(locked.iterdir())


@on_tf  # the check is backend-independent; JAX compiles slowly on CPU
def test_cli_wrong_app_is_one_line(tmp_path, capsys):
    from cinn.apps.inpainting.model import build_model

    model = build_model({"levels": 1, "blocks": 1, "subnet": {"hidden": 8}, "cond_channels": 4,
                         "cond_hidden": 8, "cond_blocks": 1})
    model.save(tmp_path / "inpainting.keras")
    code, err = _cli(["export", "colorization", "--weights", str(tmp_path / "inpainting.keras"),
                      "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("cinn: error:") and "not for colorization" in err, err
    assert not (tmp_path / "out").exists()


@on_tf  # the check is backend-independent; JAX compiles slowly on CPU
def test_cli_plain_flow_is_not_an_app_model(tmp_path, capsys):
    tiny_model().save(tmp_path / "plain.keras")
    code, err = _cli(["export", "superres", "--weights", str(tmp_path / "plain.keras"),
                      "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and len(err.splitlines()) == 1
    assert "unknown app, not for superres" in err, err


# -- app-level serving signatures ----------------------------------------------------
def _tiny_app_model(app, base="bicubic", tmp_path=None):
    if app == "colorization":
        from cinn.apps.colorization.model import build_model

        cfg = {"levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1},
               "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1}
        if base == "global":   # global latents, a fixed 16x16 working size (the default's kind)
            cfg.update(size=16, global_blocks=1, global_hidden=8, global_depth=1,
                       global_features=4, global_widths=[4])
    elif app == "inpainting":
        from cinn.apps.inpainting.model import build_model

        cfg = {"levels": 2, "blocks": 1, "subnet": {"hidden": 8}, "cond_channels": 4,
               "cond_hidden": 8, "cond_blocks": 1}
        if base == "learned_fill":  # the flow around a (random) L2 fill net
            from helpers import randomize

            fill = build_model({"type": "regressor", "cond_widths": [4, 6], "cond_blocks": 1})
            randomize(fill, 0.1, seed=3)
            fill.save(tmp_path / "fill.keras")
            cfg["fill_init"] = str(tmp_path / "fill.keras")
    else:
        from cinn.apps.superres.model import build_model

        cfg = {"scale": 4, "levels": 2, "subnet": {"hidden": 8, "depth": 1}, "blocks": 1,
               "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1, "cond_growth": 4,
               "base": base}
    from helpers import randomize

    model = build_model(cfg)
    randomize(model, 0.05, seed=2)
    return model


def _app_case(app, model, sig):
    """(served uint8 [N, ...] for one odd-sized image, the app's own output, extras)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (13, 18, 3), dtype=np.uint8)
    img = (img // 4 + np.linspace(0, 180, 18)[None, :, None]).astype(np.uint8)  # smooth-ish
    args = dict(num_samples=tf.constant(3), temperature=tf.constant(0.8),
                seed=tf.constant(5, tf.int64))
    if app == "colorization":
        from cinn.apps.colorization.infer import colorize, has_global

        local = {}
        if has_global(model):   # the working size: 13x18 grows in y, 40x50 shrinks
            local = {"local_temperature": 0.6}
            args["local_temperature"] = tf.constant(0.6)
            big = np.repeat(np.repeat(img, 3, axis=0), 3, axis=1)[:40, :50]
            got = sig["colorize"](image=tf.constant(big[None]), **args)["colorized"]
            want = colorize(model, big, n=3, temperature=0.8, seed=5, **local)
            diff = np.abs(got.numpy()[0].astype(int) - want)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
        out = sig["colorize"](image=tf.constant(img[None]), **args)["colorized"].numpy()[0]
        two = sig["colorize"](image=tf.constant(np.stack([img[:8, :10, :1]] * 2)), **args)
        assert two["colorized"].shape == (2, 3, 8, 10, 3)
        return out, colorize(model, img, n=3, temperature=0.8, seed=5, **local)
    if app == "superres":
        from cinn.apps.superres.infer import upscale

        lr = img[:7, :9]
        out = sig["upscale"](image=tf.constant(lr[None]), **args)["upscaled"].numpy()[0]
        two = sig["upscale"](image=tf.constant(np.stack([img[:4, :6]] * 2)), **args)
        assert two["upscaled"].shape == (2, 3, 16, 24, 3)
        return out, upscale(model, lr, n=3, temperature=0.8, seed=5)
    from cinn.apps.inpainting.infer import inpaint
    from cinn.apps.inpainting.model import fill_hole

    mask = np.zeros(img.shape[:2], bool)
    mask[3:9, 4:12] = True
    served = dict(image=tf.constant(img[None]), mask=tf.constant(mask[None].astype(np.uint8)),
                  **args)
    ref = inpaint(model, img, mask, n=3, temperature=0.8, seed=5)
    approx = sig["inpaint"](**served)["inpainted"].numpy()[0]
    assert np.array_equal(approx[:, ~mask], ref[:, ~mask])    # known pixels untouched
    assert np.abs(approx.astype(int) - ref)[:, mask].mean() < 12  # in-graph fill ~ Telea
    out = sig["inpaint_filled"](filled=tf.constant(fill_hole(img, mask)[None]),
                                **served)["inpainted"].numpy()[0]
    return out, ref


@on_tf
@pytest.mark.parametrize("app,signature,base", [("colorization", "colorize", None),
                                                ("colorization", "colorize", "global"),
                                                ("superres", "upscale", "bicubic"),
                                                ("superres", "upscale", "consistent"),
                                                ("inpainting", "inpaint", None),
                                                ("inpainting", "inpaint", "learned_fill")])
def test_app_export_matches_the_command_line(tmp_path, capsys, app, signature, base):
    model = _tiny_app_model(app, base, tmp_path)
    model.save(tmp_path / "model.keras")
    code, err = _cli(["export", app, "--weights", str(tmp_path / "model.keras"),
                      "--out", str(tmp_path / "saved")], capsys)
    assert code == 0, err
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    sig = loaded.signatures
    assert {signature, "serving_default", "sample", "sample_seeded", "encode",
            "log_prob", "info"} <= set(sig)
    info = sig["info"]()
    assert info["app"].numpy().decode() == app
    # the size of the output image over the input's (a 4x super-resolution: 4)
    assert int(info["upscale"]) == {"colorization": 1, "superres": 4, "inpainting": 1}[app]
    out, ref = _app_case(app, model, sig)
    assert out.dtype == np.uint8 and out.shape == ref.shape
    # same seed -> the command line's bytes (a value within float error of a rounding
    # boundary may differ by one)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
