"""Training configs (YAML): ``model``, ``data`` and ``train`` sections."""
from pathlib import Path

import yaml

from apps import CONFIGS
from cinn.errors import CinnError


def load_config(app, path=None):
    """The config of ``app``: ``path`` if given, else ``configs/<app>.yaml``."""
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
