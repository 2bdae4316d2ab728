"""``cinn.load_model``: a saved model loads in a fresh process after ``import cinn``
alone (``import cinn`` is lazy, and Keras finds a class only once its module has been
imported), and gives the samples the saved model gave."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers import TINY_APPS, randomize, to_np

ROOT = Path(__file__).resolve().parent.parent
TEMPERATURE = 0.7

FRESH = """
import json, sys
import numpy as np
import cinn
import keras

path, app_path, data_path = sys.argv[1:4]
report = {"lazy": "cinn.model" not in sys.modules}
try:                                   # what cinn.load_model saves a user from
    keras.saving.load_model(path, compile=False)
    report["plain_keras"] = "loaded"
except Exception as err:               # noqa: BLE001 - the class is not registered yet
    report["plain_keras"] = type(err).__name__
m = cinn.load_model(path)
d = np.load(data_path)
x = keras.ops.convert_to_numpy(m.sample(d["c"], n=2, z=d["z"], temperature=%r))
report["class"] = type(m).__name__
report["max_diff"] = float(np.abs(x - d["x"]).max())
from cinn.apps.common.pretrained import load_model as load_app
app = load_app("inpainting", weights=app_path)   # the apps load their own models
report["app_class"] = type(app).__name__
saved = np.load(data_path.replace(".npz", "_app.npz"))
report["app_weights_equal"] = (len(app.weights) == len(saved.files) and all(
    np.array_equal(keras.ops.convert_to_numpy(w), saved[f"w{i}"])
    for i, w in enumerate(app.weights)))
print(json.dumps(report))
""" % TEMPERATURE


def small_flow():
    """A conditional image flow with several kinds of registered layers: Haar
    downsampling, an affine injector, a learned-prior split, a random permutation,
    coupling subnets and a conditioning network."""
    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    sub = {"hidden": 8, "depth": 1}
    levels = [{"downsample": "haar", "blocks": 1, "injector": True, "split": "prior",
               "subnet": sub},
              {"downsample": "haar", "blocks": 1, "permute": "random", "subnet": sub}]
    return ConditionalINN((None, None, 2), (None, None, 1), levels, seed=0,
                          cond_net=ConditionNet([-1, -2], channels=4, hidden=8,
                                                trunk_blocks=1))


def test_fresh_process_loads_with_import_cinn_alone(tmp_path):
    from cinn.apps.inpainting.model import build_model

    model = small_flow()
    rng = np.random.default_rng(0)
    c = rng.standard_normal((1, 8, 8, 1)).astype("float32")
    model.log_prob(rng.standard_normal((1, 8, 8, 2)).astype("float32"), c)   # build
    randomize(model, 0.05, seed=1)
    z = rng.standard_normal((2, 8 * 8 * 2)).astype("float32")
    x = to_np(model.sample(c, n=2, z=z, temperature=TEMPERATURE))
    model.save(tmp_path / "flow.keras")
    np.savez(tmp_path / "data.npz", c=c, z=z, x=x)
    app = build_model(TINY_APPS["inpainting"])
    randomize(app, 0.05, seed=2)
    app.save(tmp_path / "app.keras")
    np.savez(tmp_path / "data_app.npz", **{f"w{i}": to_np(w) for i, w in enumerate(app.weights)})

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    run = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "flow.keras"),
                          str(tmp_path / "app.keras"), str(tmp_path / "data.npz")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["lazy"]                            # import cinn registered nothing ...
    assert report["plain_keras"] != "loaded"         # ... so Keras alone could not load it
    assert report["class"] == "ConditionalINN"
    assert report["max_diff"] <= 1e-5, report        # the same samples for the same z
    assert report["app_class"] == type(app).__name__ and report["app_weights_equal"]


def _registering_modules():
    """The modules of cinn whose code calls ``register_keras_serializable``."""
    found = set()
    for path in (ROOT / "cinn").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        if any(isinstance(node, ast.Attribute) and node.attr == "register_keras_serializable"
               and isinstance(getattr(node, "ctx", None), ast.Load)
               for node in ast.walk(tree)
               if isinstance(node, ast.Attribute)):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.add(".".join(parts))
    return found


def test_load_model_imports_every_module_that_registers_classes():
    from cinn.saving import REGISTERING_MODULES

    library = {m for m in _registering_modules() if not m.startswith("cinn.apps")}
    assert set(REGISTERING_MODULES) == library   # the library never imports the apps


def test_load_model_is_a_lazy_name_of_cinn():
    import cinn
    from cinn.saving import load_model

    assert cinn.load_model is load_model and "load_model" in cinn.__all__
