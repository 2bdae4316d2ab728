"""Keras internals are touched in one place, ``cinn/_keras_compat.py``, and only while
needed: each of its workarounds has a probe that fails once Keras stops behaving the
way it works around (then delete the workaround). The pinned Keras range of
``pyproject.toml`` is the tested one."""
import ast
import re
from pathlib import Path

import keras
import pytest

from cinn import _keras_compat as compat
from cinn.distribute import current_is_chief, in_multi_worker, strategy_is_chief

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "cinn").rglob("*.py"))
COMPAT = ROOT / "cinn" / "_keras_compat.py"
on_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                           reason="the workarounds concern tf.distribute")


@on_tf
@pytest.mark.parametrize("name", sorted(compat.STILL_NEEDED))
def test_workaround_is_still_needed(name):
    assert compat.STILL_NEEDED[name](), (
        f"Keras {keras.__version__} no longer behaves the way cinn/_keras_compat.py's "
        f"{name!r} works around: delete the workaround (and widen the Keras pin)")


def test_the_pinned_keras_range_is_the_tested_one():
    text = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"keras>=(\d+)\.(\d+),<(\d+)\.(\d+)"', text)
    assert pin, "pyproject.toml must pin keras>=A.B,<C.D"
    lo, hi = compat.TESTED_KERAS
    assert tuple(map(int, pin.groups())) == lo + hi
    assert compat.in_tested_range(), keras.__version__
    assert compat.in_tested_range("3.15.1") and not compat.in_tested_range("3.16.0.dev1")
    assert compat.keras_version("3.15.1rc0") == (3, 15)


def test_keras_src_is_imported_by_the_compat_module_only():
    users = [p.relative_to(ROOT).as_posix() for p in SOURCES if "keras.src" in p.read_text()]
    assert users == ["cinn/_keras_compat.py"]


def _private_uses(path):
    """``obj._name`` assigned to or called, with ``obj`` not ``self``/``cls``/``super()``."""
    tree = ast.parse(path.read_text())
    found = []

    def private(node):
        return (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                         and node.value.func.id == "super"))

    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        found += [ast.unparse(t) for t in targets if private(t)]
        if isinstance(node, ast.Call) and private(node.func):
            found.append(ast.unparse(node.func))
    return found


def test_no_other_module_assigns_to_or_calls_private_attributes():
    # cinn's own methods of its own classes, not Keras'
    own = {"cinn/tfp.py": ["model._check_condition"]}
    for path in SOURCES:
        if path == COMPAT:
            continue
        rel = path.relative_to(ROOT).as_posix()
        assert _private_uses(path) == own.get(rel, []), rel


def test_the_chief_is_decided_in_one_place():
    from unittest import mock

    assert strategy_is_chief(None) and current_is_chief()
    worker = mock.Mock()
    worker.extended.should_checkpoint = False
    assert not strategy_is_chief(worker)
    assert not in_multi_worker()


@on_tf
def test_logs_reshaped_for_the_multi_worker_reduce_average_to_scalars():
    import tensorflow as tf

    logs = compat.logs_for_multi_worker_reduce({"loss": tf.constant(2.5)})
    reduced = tf.distribute.get_strategy().reduce("MEAN", logs["loss"], axis=0)
    assert tuple(reduced.shape) == () and float(reduced) == 2.5


@on_tf
def test_a_missing_private_hook_names_the_workaround():
    from cinn.errors import CinnError

    with pytest.raises(CinnError, match="clip_after_all_reduce"):
        compat.clip_after_all_reduce(object())


def test_sublayers_walks_a_plain_layer():
    """``sublayers``: the nested layers of a plain ``Layer`` (no public walk in Keras)."""
    import keras

    from cinn._keras_compat import sublayers

    class Outer(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = keras.Sequential([keras.layers.Dense(2, name="d1")], name="seq")
            self.head = keras.layers.Dense(1, name="head")

    outer = Outer()
    assert {layer.name for layer in sublayers(outer)} >= {"seq", "d1", "head"}
    assert {layer.name for layer in sublayers(outer, recursive=False)} == {"seq", "head"}
