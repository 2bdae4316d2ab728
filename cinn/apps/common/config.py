"""Training configs (YAML): ``model``, ``data`` and ``train`` sections, checked
against one schema.

The schema is where the defaults live: the keys of the app's model ``DEFAULTS``
(``cinn/apps/<app>/model.py``), of its task's data ``DATA_DEFAULTS`` with the shared
``cinn.apps.common.data.DATA_DEFAULTS``, and of ``cinn.apps.common.train.TRAIN_DEFAULTS``;
a key whose default is a dict (``subnet: {hidden, depth}``) takes that dict's keys.
Adding a default adds it to the schema. Any other key, at the top level or in a
section, is a one-line ``CinnError`` naming the key, its file and the allowed keys.
The defaults are read from the modules' source when the modules are not imported
yet, so that ``cinn train`` checks its config before Keras is imported.

``extends: other.yaml`` (relative to the config's folder): the other config, with
this file's keys over it (sections merged key by key). Path keys, ``train.init``
(the weights a run warm-starts from) and every ``*_init`` key of a section (weights a
part of the model starts from): a relative path is looked up in the package's
``saved_models`` folder, then in the config's folder, else taken as it is
(relative to the working folder).

A config is named by its path, or by the name of a shipped config
(``cinn/apps/configs/NAME.yaml``, e.g. ``colorization_vivid``).
"""
import ast
import importlib.util
import os
import sys
from pathlib import Path

import yaml

from cinn.apps import CONFIGS, SAVED_MODELS
from cinn.errors import CinnError

#: the keys of a config's top level (``seed``: of the initial weights, crops and data order)
TOP_LEVEL = ("seed", "extends", "model", "data", "train")
SECTIONS = ("model", "data", "train")


def load_config(app, path=None, variant=None):
    """The config of ``app``: ``path`` (a file, or the name of a shipped config) if
    given, else ``configs/<app>_<variant>.yaml`` when there is one, else
    ``configs/<app>.yaml``; ``extends`` followed, path keys resolved, every key
    checked against ``schema(app)``."""
    if not path and variant and (CONFIGS / f"{app}_{variant}.yaml").exists():
        path = CONFIGS / f"{app}_{variant}.yaml"
    path = config_path(path) if path else CONFIGS / f"{app}.yaml"
    cfg = _load(path, schema(app), ())
    for key in SECTIONS:
        cfg.setdefault(key, {})
    return cfg


def config_path(name):
    """``name`` as a config file: an existing path, else a shipped config of that name
    (with or without ``.yaml``); ``CinnError`` naming the shipped ones otherwise."""
    path = Path(name)
    if path.exists():
        return path
    if len(path.parts) == 1:
        shipped = CONFIGS / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
        if shipped.exists():
            return shipped
    names = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml")))
    raise CinnError(f"{name}: no such config file (shipped configs: {names})")


def schema(app):
    """``{section: {key: default}}`` of ``app``'s configs (see the module docstring)."""
    data = dict(_defaults("cinn.apps.common.data", "DATA_DEFAULTS"))
    data.update(_defaults(f"cinn.apps.{app}.task", "DATA_DEFAULTS", required=False) or {})
    return {"model": _defaults(f"cinn.apps.{app}.model", "DEFAULTS"), "data": data,
            "train": dict(_defaults("cinn.apps.common.train", "TRAIN_DEFAULTS"))}


def _defaults(module, name, required=True):
    """The dict ``name`` of ``module``: the attribute when the module is imported, else
    the literal assigned to it at the module's top level (read, not imported; a name
    the module imports from another module is followed there)."""
    if module in sys.modules:
        value = getattr(sys.modules[module], name, None)
    else:
        value = _literal(module, name)
    if value is None and required:
        raise LookupError(f"{module} has no {name}")
    return value


def _literal(module, name):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets)) or (
                isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise LookupError(f"{module}.{name} must be a literal (the config schema "
                                  "reads it without importing the module)") from None
        if isinstance(node, ast.ImportFrom) and node.module and any(
                (a.asname or a.name) == name and a.name == name for a in node.names):
            return _defaults(node.module, name, required=False)
    return None


def _load(path, allowed, seen):
    """The config in ``path`` with its ``extends`` chain merged in."""
    path = Path(path)
    if not path.exists():
        raise CinnError(f"{path}: no such config file")
    if path.resolve() in seen:
        raise CinnError(f"{path}: extends itself (through {' -> '.join(map(str, seen))})")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CinnError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise CinnError(f"{path}: a config is a mapping of {', '.join(TOP_LEVEL)}")
    check(cfg, allowed, path)
    _resolve_paths(cfg, path.parent)
    parent = cfg.pop("extends", None)
    if parent is None:
        return cfg
    base = _load(os.path.normpath(path.parent / str(parent)), allowed, seen + (path.resolve(),))
    return merge(base, cfg)


def check(cfg, allowed, path):
    """``CinnError`` for the first key of ``cfg`` that ``allowed`` (``schema(app)``)
    does not have, naming it, the file ``path`` and the keys allowed there."""
    _check_keys(cfg, TOP_LEVEL, "", path)
    for section in SECTIONS:
        value = cfg.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise CinnError(f"{path}: {section} must be a mapping of keys, got {value!r}")
        _check_keys(value, allowed[section], f"{section}.", path)
        for key, default in allowed[section].items():
            if isinstance(default, dict) and isinstance(value.get(key), dict):
                _check_keys(value[key], default, f"{section}.{key}.", path)


def _check_keys(given, allowed, prefix, path):
    for key in given:
        if key not in allowed:
            raise CinnError(f"{path}: unknown key {prefix}{key}; allowed in "
                            f"{prefix.rstrip('.') or 'the top level'}: "
                            f"{', '.join(sorted(map(str, allowed)))}")


def is_path_key(section, key):
    """Whether ``section.key`` holds the path of a weights file (see the module docstring)."""
    return (section, key) == ("train", "init") or str(key).endswith("_init")


def resolve_path(value, folder):
    """A relative weights path of a config in ``folder``: in ``saved_models``, else in
    ``folder``, else as written."""
    path = Path(value)
    if path.is_absolute():
        return str(path)
    for base in (SAVED_MODELS, Path(folder)):
        if (base / path).exists():
            return str(base / path)
    return str(value)


def _resolve_paths(cfg, folder):
    for section in SECTIONS:
        for key, value in (cfg.get(section) or {}).items():
            if value and isinstance(value, str) and is_path_key(section, key):
                cfg[section][key] = resolve_path(value, folder)


def merge(base, over):
    """``over`` on top of ``base``: sections (and dicts in them) merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
