"""Training configs: one schema from the defaults, ``extends``, weights paths, shipped
names, and a typo as one line of ``cinn train``."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cinn.apps import CONFIGS, SAVED_MODELS
from cinn.apps.common.config import load_config, schema
from cinn.cli import main
from cinn.errors import CinnError

APPS = ("colorization", "superres", "inpainting")

#: the colorization configs as they were before ``extends``: the variants must load to
#: the same dicts (colorization_vivid gains its warm start, ``train.init``)
BASE = {"seed": 0,
        "model": {"conditional": True, "levels": 3, "blocks": 3, "split": "plain",
                  "subnet": {"hidden": 32, "depth": 2}, "cond_channels": 24,
                  "cond_hidden": 32, "cond_blocks": 1, "clamp": 2.0},
        "data": {"crop": 64, "batch_size": 8, "steps_per_epoch": 100, "val_images": 16},
        "train": {"epochs": 100, "lr_schedule": "cosine", "learning_rate": 0.001,
                  "clipnorm": 1.0}}
UNCOND = {**BASE, "model": {**BASE["model"], "conditional": False}}
VIVID = {**BASE, "data": {"saturation": [0.6, 2.4], "hue": 40, "crop": 64, "batch_size": 32,
                          "steps_per_epoch": 500, "val_images": 16},
         "train": {"epochs": 30, "lr_schedule": "cosine", "learning_rate": 0.0003,
                   "clipnorm": 1.0,
                   "init": str(SAVED_MODELS / "colorization" / "colorization_muted.keras")}}
UNET_MODEL = {"conditional": True, "levels": 3, "blocks": 3, "split": "plain",
              "subnet": {"hidden": 32, "depth": 2}, "cond_net": "unet",
              "cond_widths": [32, 48, 64, 96], "cond_blocks": 1, "cond_context": True,
              "cond_channels": 24, "clamp": 2.0}
MEAN = {"seed": 0,
        "model": {**UNET_MODEL, "head_hidden": 32, "mean_head": True,
                  "mean_init": str(SAVED_MODELS / "colorization" / "colorization_l2.keras")},
        "data": BASE["data"],
        "train": {"epochs": 200, "lr_schedule": "cosine", "learning_rate": 0.0005,
                  "clipnorm": 1.0, "checkpoint_every": 500}}


def app_of(config):
    return config.stem.split("_")[0]


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_by_name_and_fits_the_schema(config):
    cfg = load_config(app_of(config), config.stem)        # the name of a shipped config
    assert cfg == load_config(app_of(config), config)      # ... is that file
    assert set(cfg) <= {"seed", "model", "data", "train"}
    model = schema(app_of(config))["model"]
    if "subnet" in cfg["model"]:                           # one spelling: subnet: {hidden, depth}
        assert set(cfg["model"]["subnet"]) <= set(model["subnet"]) == {"hidden", "depth"}
    for key, value in {**cfg["model"], **cfg["train"]}.items():
        if key == "init" or key.endswith("_init"):         # weights paths: shipped files
            assert (SAVED_MODELS / value).is_file(), (config.stem, key, value)


def test_the_variants_are_the_dicts_they_were():
    assert load_config("colorization") == BASE
    assert load_config("colorization", "colorization_uncond") == UNCOND
    assert load_config("colorization", "colorization_vivid") == VIVID
    assert load_config("colorization", "colorization_mean") == MEAN
    assert "extends" in (CONFIGS / "colorization_vivid.yaml").read_text()


def test_one_spelling_of_the_subnet_in_every_app():
    for app in APPS:
        model = schema(app)["model"]
        assert model["subnet"].keys() == {"hidden", "depth"}
        assert not {"hidden", "subnet_hidden", "subnet_depth"} & set(model)


def one_line(err, *words):
    msg = str(err.value)
    assert "\n" not in msg, msg
    for word in words:
        assert word in msg, msg
    return msg


@pytest.mark.parametrize("text, key, where", [
    ("seeed: 1\n", "seeed", "data, extends, model, seed, train"),
    ("model: {levls: 2}\n", "model.levls", "levels"),
    ("data: {batchsize: 4}\n", "data.batchsize", "batch_size"),
    ("train: {learning_rte: 0.1}\n", "train.learning_rte", "learning_rate"),
    ("model: {subnet: {hiden: 8}}\n", "model.subnet.hiden", "depth, hidden"),
    ("model: {hidden: 8}\n", "model.hidden", "subnet"),               # the old spelling
])
def test_an_unknown_key_anywhere_is_one_line_naming_key_file_and_allowed(tmp_path, text, key,
                                                                          where):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CinnError) as err:
        load_config("inpainting" if "hidden: 8}" in text else "colorization", path)
    one_line(err, f"unknown key {key}", str(path), where)


def test_extends_merges_sections_key_by_key_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text(
        "seed: 3\nmodel: {levels: 2, subnet: {hidden: 8, depth: 1}}\n"
        "train: {epochs: 5, clipnorm: 1.0}\n")
    (tmp_path / "sub" / "child.yaml").write_text(
        "extends: ../base.yaml\nmodel: {subnet: {hidden: 16}}\ntrain: {epochs: 7}\n")
    cfg = load_config("colorization", tmp_path / "sub" / "child.yaml")
    assert cfg == {"seed": 3, "model": {"levels": 2, "subnet": {"hidden": 16, "depth": 1}},
                   "data": {}, "train": {"epochs": 7, "clipnorm": 1.0}}
    # a typo in the file extended names that file
    (tmp_path / "base.yaml").write_text("model: {levels: 2, blokcs: 1}\n")
    with pytest.raises(CinnError) as err:
        load_config("colorization", tmp_path / "sub" / "child.yaml")
    one_line(err, str(tmp_path / "base.yaml"), "model.blokcs")
    (tmp_path / "base.yaml").write_text("extends: sub/child.yaml\n")
    with pytest.raises(CinnError) as err:
        load_config("colorization", tmp_path / "sub" / "child.yaml")
    one_line(err, "extends itself")


def test_weights_paths_resolve_in_saved_models_then_the_configs_folder(tmp_path):
    (tmp_path / "mine.keras").write_bytes(b"")
    (tmp_path / "c.yaml").write_text(
        "model: {mean_init: colorization/colorization_l2.keras}\ntrain: {init: mine.keras}\n")
    cfg = load_config("colorization", tmp_path / "c.yaml")
    assert cfg["model"]["mean_init"] == str(SAVED_MODELS / "colorization" /
                                            "colorization_l2.keras")
    assert cfg["train"]["init"] == str(tmp_path / "mine.keras")
    (tmp_path / "c.yaml").write_text("train: {init: runs/x/model.keras}\n")
    assert load_config("colorization", tmp_path / "c.yaml")["train"]["init"] == \
        "runs/x/model.keras"                               # neither: as written (working folder)


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(CinnError) as err:
        load_config("colorization", "colorization_vivd")
    one_line(err, "colorization_vivd: no such config file", "colorization_vivid")


def test_the_schema_follows_the_defaults(tmp_path, monkeypatch):
    from cinn.apps.colorization import model as M
    from cinn.apps.common import train as T

    (tmp_path / "c.yaml").write_text("model: {new_option: 1}\ntrain: {new_setting: 2}\n")
    with pytest.raises(CinnError):
        load_config("colorization", tmp_path / "c.yaml")
    monkeypatch.setitem(M.DEFAULTS, "new_option", 0)
    monkeypatch.setitem(T.TRAIN_DEFAULTS, "new_setting", 0)
    assert load_config("colorization", tmp_path / "c.yaml")["model"] == {"new_option": 1}


def test_the_schema_is_read_without_importing_keras():
    """``cinn train`` checks its config before Keras is imported (the XLA flags must be
    set first): the defaults are read from the modules' source, the same keys."""
    code = ("import json, sys; from cinn.apps.common.config import schema; "
            "print(json.dumps([{a: {s: sorted(v) for s, v in schema(a).items()} for a in "
            f"{APPS!r}}}, sorted(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    read, imported = json.loads(out.stdout)
    assert imported == []
    assert read == {a: {s: sorted(v) for s, v in schema(a).items()} for a in APPS}


def test_cinn_train_with_a_typo_exits_1_with_one_error_line(tmp_path, capfd):
    data = tmp_path / "data"
    data.mkdir()
    cv2.imwrite(str(data / "a.png"), np.zeros((24, 24, 3), np.uint8) + 128)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {levels: 1}\ndata: {crop: 16, batchsize: 4}\n")
    capfd.readouterr()
    assert main(["train", "colorization", "--data", str(data), "--config", str(bad),
                 "--out", str(tmp_path / "run")]) == 1
    err = capfd.readouterr().err.strip()
    assert err.startswith("cinn: error: ") and "\n" not in err, err
    for word in (str(bad), "unknown key data.batchsize", "batch_size", "steps_per_epoch"):
        assert word in err, err
    assert not (tmp_path / "run").exists()


def test_train_init_in_the_config_warm_starts_and_init_on_the_command_line_wins(
        tmp_path, capfd):
    from cinn.apps.colorization.model import build_model

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(data / f"c{i}.png"), rng.integers(0, 256, (24, 40, 3), np.uint8))
    model = "model: {levels: 1, blocks: 1, subnet: {hidden: %d, depth: 1}, cond_channels: 4, " \
            "cond_hidden: 8}\n"
    rest = ("data: {crop: 16, batch_size: 4, steps_per_epoch: 1, val_images: 0}\n"
            "train: {epochs: 1, tensorboard: false, init: start.keras}\n")
    (tmp_path / "run.yaml").write_text(model % 8 + rest)
    (tmp_path / "other.yaml").write_text(model % 12 + rest)
    build_model(load_config("colorization", tmp_path / "run.yaml")["model"]).save(
        tmp_path / "start.keras")                           # next to the config
    build_model(load_config("colorization", tmp_path / "other.yaml")["model"]).save(
        tmp_path / "other.keras")
    base = ["train", "colorization", "--data", str(data), "--verbose", "0",
            "--config", str(tmp_path / "run.yaml")]
    capfd.readouterr()
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert f"warm start from {tmp_path / 'start.keras'}" in capfd.readouterr().out
    assert main(base + ["--out", str(tmp_path / "b"), "--init",
                        str(tmp_path / "other.keras")]) == 1   # --init is used, not start.keras
    err = capfd.readouterr().err.strip()
    assert str(tmp_path / "other.keras") in err and "does not match" in err
