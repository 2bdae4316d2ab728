"""``cinn export APP --weights PATH --out DIR``: an app's model as a TensorFlow SavedModel.

The SavedModel holds the app's image-level signatures (``cinn/apps/<app>/export.py``:
``serving_functions(model)``) and the raw flow signatures of ``cinn.export``;
it loads with TensorFlow alone. Export runs on the TensorFlow backend: under
another backend (e.g. weights trained with ``KERAS_BACKEND=jax``) the command
checks the weights, then runs itself again with ``KERAS_BACKEND=tensorflow``.
"""
import importlib
import os
import subprocess
import sys
from pathlib import Path

APPS = ("colorization", "superres", "inpainting")


def add_command(sub):
    p = sub.add_parser("export", help="write an app's model as a TensorFlow SavedModel "
                       "(serving signatures + raw flow signatures)")
    p.add_argument("app", choices=APPS)
    p.add_argument("--weights", help="model file or run folder (default: shipped)")
    p.add_argument("--out", required=True, help="SavedModel folder to write")
    p.add_argument("--scale", type=int, choices=(4, 8),
                   help="superres only: the factor (picks the shipped model; checked "
                   "against --weights)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into --out even if it is a folder that is not empty")
    p.set_defaults(func=run, check=check)


def check(args):
    """``cinn export``'s checks before Keras is imported (one-line ``CinnError``s):
    ``--scale`` only with superres, the model file exists, ``--out`` is a folder (or
    can be made: its nearest existing parent is a folder one may write in), empty
    unless ``--overwrite``. Nothing is written: a refused export leaves no folder."""
    from cinn.apps.common.pretrained import weights_path
    from cinn.errors import CinnError

    if args.scale and args.app != "superres":
        raise CinnError("--scale is an option of superres only")
    weights_path(args.app, args.weights,
                 None if args.scale in (None, 4) else f"x{args.scale}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CinnError(f"--out {out}: exists and is not a folder")
    if out.is_dir():
        if any(out.iterdir()) and not args.overwrite:
            raise CinnError(f"{out}: the folder is not empty; pass --overwrite to write "
                            "the SavedModel into it anyway, or choose another --out")
        writable = out
    else:
        writable = out.absolute().parent
        while not writable.exists():
            writable = writable.parent
        if not writable.is_dir():
            raise CinnError(f"--out {out}: cannot make the folder ({writable} is not a "
                            "folder)")
    if not os.access(writable, os.W_OK | os.X_OK):
        raise CinnError(f"--out {out}: cannot write in {writable} (permission denied)")


def app_functions(app, model):
    """``extra`` for ``cinn.export.export_model``: a callable giving the app's
    image-level signatures (``cinn/apps/<app>/export.py: serving_functions(model, raw)``),
    or ``None`` when the app has none."""
    try:
        module = importlib.import_module(f"cinn.apps.{app}.export")
    except ModuleNotFoundError as err:
        if err.name != f"cinn.apps.{app}.export":
            raise
        return None
    return lambda raw: module.serving_functions(model, raw)


def export_app(app, model, out):
    """Write ``model`` (of ``app``) to ``out``; returns the signature names."""
    from cinn.export import export_model

    return export_model(model, out, extra=app_functions(app, model))


def _rerun_on_tensorflow(args):
    import keras

    print(f"[cinn] export needs TensorFlow (Keras runs on {keras.backend.backend()}): "
          "running it again with KERAS_BACKEND=tensorflow", file=sys.stderr, flush=True)
    argv = ["export", args.app, "--out", str(args.out)]
    if args.weights:
        argv += ["--weights", str(args.weights)]
    if args.scale:
        argv += ["--scale", str(args.scale)]
    if args.overwrite:
        argv += ["--overwrite"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    root = str(Path(__file__).resolve().parents[2])   # the folder holding cinn/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return subprocess.call([sys.executable, "-m", "cinn.cli", *argv], env=env)


def run(args):
    # here, not at the top: Keras (and cinn, which imports it) only once a command runs
    import keras

    from cinn.apps.common.pretrained import load_model

    check(args)   # cinn.cli.main ran it before Keras; again for callers of run alone
    out = Path(args.out)
    # load first: a model of another app or a damaged file fails here, on any backend
    if args.scale:
        model = importlib.import_module("cinn.apps.superres.infer").load(args.weights, args.scale)
    else:
        model = load_model(args.app, args.weights)
    if keras.backend.backend() != "tensorflow":
        return _rerun_on_tensorflow(args)
    names = export_app(args.app, model, out)
    print(f"[cinn] {args.app}: SavedModel written to {out} with signatures "
          f"{', '.join(names)} (serving_default = {names[0]}); "
          f"inspect with: saved_model_cli show --dir {out} --all")
    return 0
