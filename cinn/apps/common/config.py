"""Training configs (YAML): ``model``, ``data`` and ``train`` sections."""
from pathlib import Path

import yaml

from cinn.apps import CONFIGS
from cinn.errors import CinnError


def load_config(app, path=None, variant=None):
    """The config of ``app``: ``path`` if given, else ``configs/<app>_<variant>.yaml``
    when there is one, else ``configs/<app>.yaml``."""
    if not path and variant and (CONFIGS / f"{app}_{variant}.yaml").exists():
        path = CONFIGS / f"{app}_{variant}.yaml"
    path = Path(path) if path else CONFIGS / f"{app}.yaml"
    if not path.exists():
        raise CinnError(f"{path}: no such config file")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CinnError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    for key in ("model", "data", "train"):
        cfg.setdefault(key, {})
    return cfg
