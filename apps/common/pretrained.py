"""Loading trained models: shipped weights or a training run's ``model.keras``."""
import importlib
from pathlib import Path

from apps import SAVED_MODELS
from cinn.errors import CinnError

MODEL_FILE = "model.keras"


def default_weights(app, variant=None):
    name = app if variant is None else f"{app}_{variant}"
    return SAVED_MODELS / app / (MODEL_FILE if variant is None else f"{name}.keras")


def load_model(app, weights=None, variant=None):
    """Load the model of ``app`` (its layers registered by importing the app).

    ``weights``: a ``.keras`` file or a run folder holding ``model.keras``;
    default: the shipped model in ``saved_models/<app>/``. The file must hold a
    model of that app (its config names the app), else ``CinnError``.
    """
    import keras

    importlib.import_module(f"apps.{app}.model")
    path = Path(weights) if weights else default_weights(app, variant)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise CinnError(f"{path}: no such model file")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure becomes one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CinnError(f"{path}: could not load a cinn model ({msg})") from None
    found = getattr(model, "app", None)
    if found != app:
        raise CinnError(f"{path}: holds a model for {found or 'an unknown app'!s}, "
                        f"not for {app}")
    return model


def ship(app, src, dst):
    """Copy a training run's model to ``dst`` without the optimizer state (a third of
    the size: Adam keeps two moments per weight): how ``saved_models/`` is made."""
    model = load_model(app, src)
    model.save(dst)
    return Path(dst)


if __name__ == "__main__":  # python -m apps.common.pretrained APP RUN_DIR_OR_FILE DST.keras
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: python -m apps.common.pretrained APP RUN_DIR_OR_FILE DST.keras")
    try:
        print(ship(*sys.argv[1:]))
    except CinnError as err:
        sys.exit(f"cinn: error: {err}")
