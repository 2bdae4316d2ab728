"""``cinn`` picks a Keras backend that is installed: ``KERAS_BACKEND`` when set (one
line when it is missing), else ``keras.json``'s, else the other one."""
import importlib.util
import json

import pytest

from cinn import cli


def _installed(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n: real("json") if n in names else None)


def _home(tmp_path, backend=None):
    if backend:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": backend}))
    return str(tmp_path)


@pytest.mark.parametrize("keras_json", [None, "tensorflow"])
def test_jax_alone_is_picked_over_a_missing_tensorflow(monkeypatch, tmp_path, keras_json):
    _installed(monkeypatch, "jax")
    env = {"KERAS_HOME": _home(tmp_path, keras_json)}
    assert cli.pick_backend(env) == "jax"
    assert env["KERAS_BACKEND"] == "jax"


def test_keras_json_wins_when_installed(monkeypatch, tmp_path):
    _installed(monkeypatch, "jax", "tensorflow")
    env = {"KERAS_HOME": _home(tmp_path, "jax")}
    assert cli.pick_backend(env) == "jax"
    env = {"KERAS_HOME": _home(tmp_path / "none")}
    assert cli.pick_backend(env) == "tensorflow"


def test_a_missing_backend_is_one_line(monkeypatch, tmp_path):
    _installed(monkeypatch, "jax")
    with pytest.raises(cli.UsageError, match=r"KERAS_BACKEND=tensorflow.*cinn\[tensorflow\]"):
        cli.pick_backend({"KERAS_BACKEND": "tensorflow", "KERAS_HOME": _home(tmp_path)})
    _installed(monkeypatch)
    with pytest.raises(cli.UsageError, match="no Keras backend installed"):
        cli.pick_backend({"KERAS_HOME": _home(tmp_path)})
