"""Loading trained models: shipped weights or a training run's ``model.keras``."""
import importlib
import json
import zipfile
import zlib
from pathlib import Path

from cinn.apps import SAVED_MODELS
from cinn.apps.colorization import defaults as colorization_defaults
from cinn.errors import CinnError

MODEL_FILE = "model.keras"


def default_weights(app, variant=None):
    """The shipped model file of ``app`` (``variant``: ``saved_models/APP/APP_VARIANT.keras``).
    An app's default is ``saved_models/APP/model.keras`` unless its ``defaults`` module
    names another (colorization: ``colorization_global.keras``)."""
    if variant is not None:
        return SAVED_MODELS / app / f"{app}_{variant}.keras"
    return SAVED_MODELS / app / _DEFAULT_FILES.get(app, MODEL_FILE)


APPS = ("colorization", "superres", "inpainting")
#: default model files other than ``model.keras`` (the apps' defaults modules: no Keras)
_DEFAULT_FILES = {"colorization": colorization_defaults.DEFAULT_WEIGHTS}


def app_of_file(path):
    """The app whose model a ``.keras`` file holds (from its ``config.json``, without
    loading it), ``None`` for a model of no app; ``CinnError`` for a file that is not
    a readable ``.keras`` archive (corrupt, truncated or another format)."""
    import keras

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()            # CRC of every member: truncation, bit rot
            if bad is not None:
                raise CinnError(f"{path}: corrupt model file (damaged member {bad})")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, OSError,
            EOFError, zlib.error):
        raise CinnError(f"{path}: not a .keras model file (corrupt, truncated or another "
                        "format)") from None
    for app in APPS:                           # register every app's classes
        importlib.import_module(f"cinn.apps.{app}.model")
    name = config.get("registered_name") or config.get("class_name")
    cls = keras.saving.get_registered_object(name) if isinstance(name, str) else None
    return getattr(cls, "app", None)


def weights_path(app, weights=None, variant=None):
    """The model file ``load_model`` reads (``weights``, its ``model.keras`` for a run
    folder, else the shipped one); ``CinnError`` when there is none. Needs no Keras."""
    path = Path(weights) if weights else default_weights(app, variant)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise CinnError(f"{path}: no such model file")
    return path


def load_model(app, weights=None, variant=None):
    """Load the model of ``app`` (its layers registered by importing the app).

    ``weights``: a ``.keras`` file or a run folder holding ``model.keras``;
    default: the shipped model in ``saved_models/<app>/``. One-line ``CinnError``s
    for a missing file, a file that is not a (readable) ``.keras`` model, and a
    model of another app, each with its own message.
    """
    import keras

    importlib.import_module(f"cinn.apps.{app}.model")
    path = weights_path(app, weights, variant)
    found = app_of_file(path)
    if found != app:
        raise CinnError(f"{path}: holds a model for {found or 'an unknown app'}, not for {app} "
                        f"(pass the --weights of a {app} model, or none for the shipped one)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure becomes one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CinnError(f"{path}: could not load the {app} model, the file may be damaged "
                        f"({msg[:200]})") from None
    return model


def ship(app, src, dst):
    """Copy a training run's model to ``dst`` without the optimizer state (a third of
    the size: Adam keeps two moments per weight): how ``saved_models/`` is made."""
    model = load_model(app, src)
    model.save(dst)
    return Path(dst)


if __name__ == "__main__":  # python -m cinn.apps.common.pretrained APP RUN_DIR_OR_FILE DST.keras
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: python -m cinn.apps.common.pretrained APP RUN_DIR_OR_FILE DST.keras")
    try:
        print(ship(*sys.argv[1:]))
    except CinnError as err:
        sys.exit(f"cinn: error: {err}")
