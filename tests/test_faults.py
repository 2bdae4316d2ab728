"""Faults during training: a full disk while a checkpoint is written, the checkpoint
folder made read-only mid-run, data files that turn corrupt after the start, an
interrupted run started again. Each run either goes on (a bad file skipped with a
warning naming it) or stops with one line; the last good checkpoint and the whole
history (``history.json``, every epoch of every run of the folder) survive, and the
same command then resumes.

Library tests train the tiny flow of ``toy_flow``; command-line tests train a tiny
inpainting model (16x16 crops) through ``cinn.cli.main`` in this process.
"""
import errno
import json
import os
import re
import stat

import cv2
import keras
import numpy as np
import pytest
from toy_flow import small_model, toy_data

import cinn.callbacks as callbacks
from cinn.callbacks import Checkpoints, SaveFailed, read_history
from cinn.cli import main
from cinn.training import train

# Faults are file and callback handling (cinn.callbacks, cinn.training, the command
# line), the same code on every backend: these tests run once, on JAX, the backend
# that trains (about 40 s there, 105 s on TensorFlow beside the JAX run).
pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="backend-independent: runs on the JAX run only")

EPOCHS, STEPS = 3, 4  # 64 samples, batch 16; checkpoints every 2 steps and at epoch ends


def run(out, extra=(), epochs=EPOCHS):
    keras.utils.set_random_seed(0)
    model = small_model()
    train(model, toy_data(), epochs=epochs, batch_size=16, learning_rate=3e-3, out_dir=out,
          checkpoint_every=2, verbose=0, callbacks=list(extra), tensorboard=False, seed=0)
    return model


def step_of(path):
    return int(re.search(r"step-(\d+)", str(path)).group(1))


def assert_intact(out, steps):
    """The committed checkpoints are ``steps``, each verified, and no temporary or
    uncommitted file is left beside them."""
    ckpts = Checkpoints(out / "checkpoints")
    assert ckpts.steps() == steps
    for s in steps:
        ckpts.verify(s)
    names = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name != "best.json")
    if ckpts.best() is not None:                    # the best epoch's record names one of them
        assert ckpts.best()["step"] in steps
    assert names == sorted(f"step-{s:06d}.{ext}" for s in steps for ext in ("json",
                                                                           "weights.h5")), names


def one_line(err):
    text = str(err)
    assert "\n" not in text and len(text) < 400, text
    return text


# -- the history ----------------------------------------------------------------------------
def test_history_of_every_epoch_survives_a_resume(tmp_path):
    out = tmp_path / "run"
    run(out, epochs=2)
    first = read_history(out / "history.json")
    assert first["epochs"] == [1, 2] and first["steps"] == [4, 8]
    run(out, epochs=3)                               # resumes at epoch 3, adds it
    data = json.loads((out / "history.json").read_text())
    assert data["epochs"] == [1, 2, 3] and data["steps"] == [4, 8, 12]
    assert data["history"]["loss"][:2] == first["history"]["loss"]
    assert len(data["history"]["loss"]) == 3 and all(np.isfinite(data["history"]["loss"]))


def test_interrupted_epoch_is_not_in_the_history_and_is_run_again(tmp_path):
    out = tmp_path / "run"

    class Interrupt(keras.callbacks.Callback):   # Ctrl+C in epoch 2, after step 6
        def on_train_batch_end(self, batch, logs=None):
            if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == 6:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(out, [Interrupt()])
    assert read_history(out / "history.json")["epochs"] == [1]
    run(out)
    data = read_history(out / "history.json")
    assert data["epochs"] == [1, 2, 3] and data["steps"] == [4, 8, 12]


def test_unreadable_history_is_kept_aside(tmp_path, capsys):
    path = tmp_path / "history.json"
    path.write_text('{"epochs": [1, 2], "history": {"loss": [1.0, ')  # cut by a crash
    assert read_history(path)["epochs"] == []
    assert (tmp_path / "history.json.corrupt").exists() and "unreadable" in capsys.readouterr().err
    path.write_text(json.dumps({"seconds": 3, "history": {"loss": [2.0, 1.5]}}))  # older runs
    old = read_history(path)
    assert old["epochs"] == [1, 2] and old["history"]["loss"] == [2.0, 1.5] and old["seconds"] == 3


# -- a full disk, a read-only folder ------------------------------------------------------
def full_disk_from(step):
    """A checkpoint writer that writes part of the file, then fails as a full disk
    does, from checkpoint ``step`` on."""
    real = callbacks._write_weights

    def write(model, path):
        if step_of(path) < step:
            return real(model, path)
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + bytes(512))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return write


def test_full_disk_while_a_checkpoint_is_written(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(callbacks, "_write_weights", full_disk_from(6))
    with pytest.raises(SaveFailed) as err:
        run(out)
    text = one_line(err.value)
    assert "No space left on device" in text and "step 6" in text and "step 4" in text
    assert_intact(out, [2, 4])                      # no half-written step 6 left
    assert read_history(out / "history.json")["epochs"] == [1]
    monkeypatch.undo()                              # space freed: the same call resumes
    run(out)
    assert Checkpoints(out / "checkpoints").latest_step() == 12
    assert read_history(out / "history.json")["epochs"] == [1, 2, 3]


def test_full_disk_while_the_history_is_written(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(out, epochs=1)
    real = callbacks.write_json_atomic

    def write(path, data):
        if path.name == "history.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(callbacks, "write_json_atomic", write)
    with pytest.raises(SaveFailed) as err:
        run(out, epochs=2)
    assert "history" in one_line(err.value) and "No space left" in str(err.value)
    # epoch 2 is neither in the history nor committed by a checkpoint: both say epoch 1
    assert read_history(out / "history.json")["epochs"] == [1]
    assert Checkpoints(out / "checkpoints").latest_step() == 6
    monkeypatch.undo()
    run(out, epochs=2)
    assert read_history(out / "history.json")["epochs"] == [1, 2]


def test_checkpoint_folder_made_read_only_mid_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    folder = out / "checkpoints"
    real = callbacks._write_weights

    def write(model, path):  # the kernel's check, also for root (who may write anyway)
        if not stat.S_IMODE(os.stat(path.parent).st_mode) & 0o200:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(model, path)

    class ReadOnly(keras.callbacks.Callback):   # someone runs chmod a-w in epoch 2
        def on_train_batch_end(self, batch, logs=None):
            if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == 5:
                folder.chmod(0o555)

    monkeypatch.setattr(callbacks, "_write_weights", write)
    try:
        with pytest.raises(SaveFailed) as err:
            run(out, [ReadOnly()])
    finally:
        folder.chmod(0o755)
    text = one_line(err.value)
    assert "Permission denied" in text and str(folder) in text and "step 4" in text
    assert_intact(out, [2, 4])
    assert read_history(out / "history.json")["epochs"] == [1]
    run(out)                                        # writable again: resumes at step 4
    assert Checkpoints(folder).latest_step() == 12
    assert read_history(out / "history.json")["epochs"] == [1, 2, 3]


def test_model_file_that_cannot_be_written_stops_with_one_line(tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(out, epochs=1)
    before = (out / "model.keras").read_bytes()

    def fail(model, path):
        path.write_bytes(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(callbacks, "_save", fail)
    with pytest.raises(SaveFailed) as err:
        run(out, epochs=2)
    assert "model.keras" in one_line(err.value) and "kept" in str(err.value)
    assert (out / "model.keras").read_bytes() == before        # the old one, whole
    assert not list(out.glob("model.tmp*"))


# -- the command line: one line, notes, corrupt data -----------------------------------------
TINY = """\
seed: 0
model: {levels: 1, blocks: 1, cond_channels: 4, cond_hidden: 4, fill_init: null}
data: {crop: 16, batch_size: 2, steps_per_epoch: 2, val_images: 16}
train: {epochs: 3, learning_rate: 0.001, tensorboard: false}
"""


@pytest.fixture()
def photos(tmp_path):
    """A folder of three small photos (too few to hold any out for validation)."""
    import skimage.data

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        img = cv2.resize(np.asarray(getattr(skimage.data, name)())[..., :3], (40, 32),
                         interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def cinn_train(tmp_path, photos, *extra):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    return main(["train", "inpainting", "--data", str(photos), "--config", str(config),
                 "--out", str(tmp_path / "run"), "--verbose", "0", *extra])


def test_cli_interrupted_in_epoch_3_then_rerun_keeps_every_epoch(tmp_path, photos, capfd,
                                                                 monkeypatch):
    real = callbacks.Checkpointer.on_train_batch_end

    def ctrl_c_at_step_5(self, batch, logs=None):          # during epoch 3 of 2 steps
        real(self, batch, logs)
        if self.counter.step == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.Checkpointer, "on_train_batch_end", ctrl_c_at_step_5)
    assert cinn_train(tmp_path, photos) == 130
    err = capfd.readouterr().err
    assert "cinn: interrupted" in err
    # three images: no validation, and a note says why
    assert re.search(r"cinn: note: .*too few images.*validation", err), err
    monkeypatch.undo()
    assert cinn_train(tmp_path, photos) == 0                # the same command again
    data = json.loads((tmp_path / "run" / "history.json").read_text())
    assert data["epochs"] == [1, 2, 3] and data["steps"] == [2, 4, 6]
    assert len(data["history"]["loss"]) == 3 and "val_loss" not in data["history"]
    assert data["seconds"] >= 0 and data["replicas"] == 1


def test_cli_full_disk_is_one_line_and_the_rerun_resumes(tmp_path, photos, capfd,
                                                        monkeypatch):
    monkeypatch.setattr(callbacks, "_write_weights", full_disk_from(4))
    assert cinn_train(tmp_path, photos) == 1
    err = capfd.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("cinn: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], err
    assert not any("Traceback" in line for line in err)
    assert_intact(tmp_path / "run", [2])
    monkeypatch.undo()
    assert cinn_train(tmp_path, photos) == 0
    assert read_history(tmp_path / "run" / "history.json")["epochs"] == [1, 2, 3]


def test_cli_data_files_corrupt_after_the_start(tmp_path, photos, capfd, monkeypatch):
    """The images are read at the start: files that turn corrupt later do not stop
    the run; the next run skips them with a warning naming each, and goes on."""
    from cinn.apps.inpainting import task

    real = task.make_datasets

    def then_corrupt(*args, **kwargs):
        made = real(*args, **kwargs)
        (photos / "coffee.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # truncated
        (photos / "chelsea.png").write_bytes(b"")                             # emptied
        return made

    monkeypatch.setattr(task, "make_datasets", then_corrupt)
    assert cinn_train(tmp_path, photos, "--epochs", "1") == 0
    monkeypatch.undo()
    capfd.readouterr()
    assert cinn_train(tmp_path, photos, "--epochs", "2") == 0
    err = capfd.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("cinn: warning: skipped")]
    assert len(warned) == 2, err
    assert any("coffee.png" in line for line in warned)
    assert any("chelsea.png" in line for line in warned)
    assert read_history(tmp_path / "run" / "history.json")["epochs"] == [1, 2]


def test_cli_folder_of_only_bad_files_says_why(tmp_path, capfd):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not an image")
    cv2.imwrite(str(folder / "b.png"), np.zeros((4, 4, 3), np.uint8))   # smaller than 8x8
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    assert main(["train", "inpainting", "--data", str(folder), "--config", str(config),
                 "--out", str(tmp_path / "run"), "--verbose", "0"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cinn: error:") and "2 unreadable or too small" in err[-1], err
    assert sum("a.png" in line for line in err) == 1 and sum("b.png" in line for line in err) == 1
