"""``cinn/_xla_cpu.py``: ``cinn.tune_cpu()`` before JAX makes XLA compile convolutions
without YNNPACK, only on the JAX backend, only for the tested jaxlib, never over a
user's own flag; cinn's own compiled programs of narrow convolutions get YNNPACK's
element-wise fusions back (compiler options this jaxlib accepts), wide ones not; and
the probe that the default still uses YNNPACK (when it stops, the flag has become
pointless: delete it)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cinn import _xla_cpu

ROOT = Path(__file__).resolve().parent.parent
TESTED = _xla_cpu.TESTED_JAXLIB[0]

# a 3x3 convolution to 64 channels from argv[4] (default 71, as in the super-resolution
# flow) on 8 x 40 x 40 (argv[2] "layer": with a bias and a ReLU, as a Keras Conv2D
# computes it), compiled as Keras compiles a training step or (argv[3] "cinn") as
# cinn.compile does; prints whether XLA gave it to YNNPACK
PROBE = """
import sys
if sys.argv[1] == "cinn":
    import cinn
    cinn.tune_cpu()
import jax, jax.numpy as jnp

def conv(x, w):
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + 0.5) if sys.argv[2] == "layer" else y

cin = int(sys.argv[4]) if len(sys.argv) > 4 else 71
options = None
if sys.argv[3] == "cinn":
    from cinn._xla_cpu import compiler_options
    options = compiler_options("cpu", [(3, 3, cin, 64), (64,)])
jitted = jax.jit(conv, compiler_options=options)
text = jitted.lower(jnp.ones((8, 40, 40, cin)), jnp.ones((3, 3, cin, 64))).compile().as_text()
print("YNN" if "ynn_fusion" in text else "EIGEN")
"""


def flags(env, jax_imported=False, version=TESTED):
    return _xla_cpu.eigen_convolutions_flags(env, jax_imported=jax_imported, version=version)


def test_the_flag_is_added_for_jax_only():
    assert flags({"KERAS_BACKEND": "jax"}) == f"--{_xla_cpu.FLAG}={_xla_cpu.FUSIONS}"
    assert flags({"KERAS_BACKEND": "tensorflow"}) is None
    assert flags({"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_backend_optimization_level=0"}
                 ) == f"--xla_backend_optimization_level=0 --{_xla_cpu.FLAG}={_xla_cpu.FUSIONS}"


def test_the_flag_is_left_out_when_it_cannot_or_should_not_apply(monkeypatch):
    jax_env = {"KERAS_BACKEND": "jax"}
    assert flags(jax_env, jax_imported=True) is None  # XLA has read its flags
    monkeypatch.setattr(_xla_cpu, "jaxlib_version", lambda: None)  # no jaxlib
    assert _xla_cpu.eigen_convolutions_flags(jax_env, jax_imported=False) is None
    assert flags(jax_env, version=(0, 9)) is None  # an XLA that may not know the flag
    assert flags(jax_env, version=_xla_cpu.TESTED_JAXLIB[1]) is None
    assert flags({**jax_env, "XLA_FLAGS": f"--{_xla_cpu.FLAG}=individual_convolution"}) is None
    assert flags({**jax_env, "CINN_XLA_CPU": "default"}) is None


def test_the_backend_is_read_like_keras_reads_it(tmp_path):
    assert _xla_cpu.keras_backend_name({"KERAS_HOME": str(tmp_path)}) == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert _xla_cpu.keras_backend_name({"KERAS_HOME": str(tmp_path)}) == "jax"
    assert _xla_cpu.keras_backend_name({"KERAS_HOME": str(tmp_path),
                                        "KERAS_BACKEND": "torch"}) == "torch"
    (tmp_path / "keras.json").write_text("not json")
    assert _xla_cpu.keras_backend_name({"KERAS_HOME": str(tmp_path)}) == "tensorflow"


def _probe(*args, **extra):
    pytest.importorskip("jax")
    if not _xla_cpu.in_tested_range(_xla_cpu.jaxlib_version()):
        pytest.skip("jaxlib outside the tested range: cinn leaves XLA's flags alone")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "CINN_XLA_CPU")}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1]


def test_tune_cpu_first_compiles_convolutions_without_ynnpack():
    assert _probe("cinn", "conv", "keras") == "EIGEN"
    assert _probe("cinn", "layer", "keras") == "EIGEN"  # no element-wise fusion takes it in
    assert _probe("cinn", "conv", "keras", CINN_XLA_CPU="default") == "YNN"


def test_cinns_own_narrow_programs_get_the_element_wise_fusions_back():
    # the options are spelled as this jaxlib accepts them (a wrong name fails the compile)
    narrow = str(_xla_cpu.NARROW_INPUTS)
    assert _probe("cinn", "layer", "cinn", narrow) == "YNN"
    assert _probe("cinn", "layer", "cinn") == "EIGEN"  # 71 input channels: too wide
    assert _probe("cinn", "layer", "cinn", CINN_XLA_CPU="default") == "YNN"  # XLA's default


def test_compiler_options_only_where_cinn_set_the_flag_and_convolutions_are_narrow(
        monkeypatch):
    monkeypatch.setattr(_xla_cpu, "_set_by_cinn", False)
    assert _xla_cpu.compiler_options("cpu") is None
    monkeypatch.setattr(_xla_cpu, "_set_by_cinn", True)
    fusions = {_xla_cpu.FLAG: _xla_cpu.COMPILED_FUSIONS}
    assert _xla_cpu.compiler_options("cpu") == fusions
    assert _xla_cpu.compiler_options("gpu") is None
    widest = _xla_cpu.NARROW_INPUTS
    # 1x1 convolutions, dense kernels and vectors do not count, a 3x3 one wider does
    assert _xla_cpu.compiler_options(
        "cpu", [(3, 3, widest, 96), (1, 1, 320, 64), (500, 10), (7,)]) == fusions
    assert _xla_cpu.compiler_options("cpu", [(3, 3, 32, 32), (3, 3, widest + 1, 64)]) is None


def test_compiled_programs_are_compiled_for_their_models_kernels(monkeypatch):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("jax.jit compiler options: JAX backend only")
    from cinn import compile as cinn_compile

    seen = []
    monkeypatch.setattr(cinn_compile, "compiler_options",
                        lambda platform, shapes: seen.append(list(shapes)))
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 3)])
    run = cinn_compile.compiled(model, "call")
    assert run(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 6, 6, 5)
    run(np.zeros((1, 8, 8, 3), "float32"))  # a new shape retraces, options stay
    assert seen == [[(3, 3, 3, 5), (5,)]]


def test_xla_still_gives_convolutions_to_ynnpack_by_default():
    assert _probe("plain", "conv", "keras") == "YNN", (
        "this jaxlib no longer compiles convolutions with YNNPACK by default: "
        "cinn/_xla_cpu.py's flag is pointless; delete it")


def test_importing_cinn_changes_nothing_global():
    """``import cinn``: no flag set, no backend imported (the CLI tunes, not the import)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "CINN_XLA_CPU")}
    env.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    probe = ("import os, sys, cinn; before = dict(os.environ); cinn.__version__; "
             "print(json.dumps([os.environ.get('XLA_FLAGS'), "
             "sorted(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + probe], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == [None, []]
