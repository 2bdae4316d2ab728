"""``train(..., init=FILE, initial_step=N)`` / ``cinn train APP --init FILE --init-step N``:
warm start from a model file with a fresh optimizer, the schedule continued from step N;
a file of another architecture is one ``cinn: error:`` line."""
import json

import keras
import numpy as np
import pytest
from toy_flow import small_model, toy_data

from cinn.callbacks import Checkpoints
from cinn.errors import CinnError
from cinn.training import cosine_lr, train


def weights_of(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


class Record(keras.callbacks.Callback):
    """The weights at the start of training and the learning rate of every epoch."""

    def __init__(self):
        super().__init__()
        self.start, self.lrs, self.epochs = None, [], []

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = weights_of(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_warm_start_loads_weights_and_continues_the_schedule(tmp_path):
    from helpers import randomize

    keras.utils.set_random_seed(0)
    first = small_model()
    first.initialize(*toy_data())
    randomize(first, 0.05)                    # weights unlike a fresh model's
    first.save(tmp_path / "first.keras")

    keras.utils.set_random_seed(5)
    second = small_model()
    rec = Record()
    # 4 steps per epoch: step 6 is epoch 2 (index 1), batch 2; the run ends at step 12
    train(second, toy_data(), epochs=3, batch_size=16, learning_rate=1e-3, verbose=0,
          out_dir=tmp_path / "run", tensorboard=False, lr_schedule="cosine",
          init=str(tmp_path / "first.keras"), initial_step=6, callbacks=[rec])
    assert all(np.array_equal(a, b) for a, b in zip(rec.start, weights_of(first)))
    assert rec.epochs == [1, 2]
    assert rec.lrs == pytest.approx([cosine_lr(e, 3, 1e-3) for e in (1, 2)], rel=1e-5)
    # a fresh optimizer: it made only the 6 remaining steps; checkpoints count from step 6
    assert int(keras.ops.convert_to_numpy(second.optimizer.iterations)) == 6
    assert Checkpoints(tmp_path / "run" / "checkpoints").latest_step() == 12

    # the same call again resumes from the checkpoint (the file is not loaded again)
    third = small_model()
    history = train(third, toy_data(), epochs=3, batch_size=16, verbose=0,
                    out_dir=tmp_path / "run", tensorboard=False,
                    init=str(tmp_path / "missing.keras"), initial_step=6)
    assert history.epoch == []
    assert all(np.array_equal(a, b) for a, b in zip(weights_of(third), weights_of(second)))

    with pytest.raises(ValueError, match="not before the end"):
        train(small_model(), toy_data(), epochs=1, batch_size=16, verbose=0,
              init=str(tmp_path / "first.keras"), initial_step=4)


def test_warm_start_rejects_another_architecture(tmp_path):
    from cinn import ConditionalINN

    small_model().save(tmp_path / "small.keras")
    wider = ConditionalINN((8, 8, 2), (8, 8, 1),
                           [{"blocks": 1, "permute": "random", "subnet": {"hidden": 16}}], seed=0)
    with pytest.raises(CinnError, match="architecture does not match"):
        train(wider, toy_data(), epochs=1, batch_size=16, verbose=0,
              init=str(tmp_path / "small.keras"))
    with pytest.raises(CinnError, match="no such model file"):
        train(small_model(), toy_data(), epochs=1, batch_size=16, verbose=0,
              init=str(tmp_path / "none.keras"))


def test_cli_init_and_mismatch_error(tmp_path, capsys):
    import cv2

    from cinn.cli import main

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        small = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
        cv2.imwrite(str(data / f"c{i}.png"), cv2.resize(small, (40, 24)))
    model = ("model: {levels: 1, blocks: 1, subnet: {hidden: %d, depth: 1}, cond_channels: 4, "
             "cond_hidden: 8}\n")
    rest = ("data: {crop: 16, batch_size: 4, steps_per_epoch: 2, val_images: 0}\n"
            "train: {epochs: 1, learning_rate: 0.001, tensorboard: false}\n")
    (tmp_path / "a.yaml").write_text(model % 8 + rest)
    (tmp_path / "b.yaml").write_text(model % 12 + rest)
    from cinn.apps.colorization.model import build_model
    from cinn.apps.common.config import load_config

    init = str(tmp_path / "a.keras")
    build_model(load_config("colorization", tmp_path / "a.yaml")["model"]).save(init)
    base = ["train", "colorization", "--data", str(data), "--verbose", "0"]
    assert main(base + ["--config", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "b"),
                        "--init", init, "--init-step", "2", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "warm start from" in out and "schedule from step 2 of 4" in out
    history = json.loads((tmp_path / "b" / "history.json").read_text())["history"]
    assert len(history["loss"]) == 1                       # one epoch: steps 3 and 4
    assert main(base + ["--config", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "c"),
                        "--init", init]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("cinn: error: ") and "does not match" in err[0]


def test_cli_options_override_the_config():
    """`cinn train --crop/--batch-size/--steps/--epochs/--lr` replace the config's values
    (how a run is moved to larger crops or another machine without a new config file)."""
    from cinn.cli import build_parser
    from cinn.apps.common.train import apply_overrides

    args = build_parser().parse_args(["train", "superres", "--data", "d", "--crop", "128",
                                      "--batch-size", "32", "--steps", "200", "--lr", "1e-4"])
    cfg = {"model": {}, "data": {"crop": 64, "batch_size": 8, "steps_per_epoch": 100},
           "train": {"epochs": 100, "learning_rate": 1e-3}}
    cfg = apply_overrides(cfg, args)
    assert cfg["data"] == {"crop": 128, "batch_size": 32, "steps_per_epoch": 200}
    assert cfg["train"] == {"epochs": 100, "learning_rate": 1e-4}
    for flag in ("--crop", "--batch-size", "--steps", "--epochs", "--lr"):
        bad = build_parser().parse_args(["train", "superres", "--data", "d", flag, "0"])
        with pytest.raises(CinnError, match=f"{flag} must be positive, got 0"):
            apply_overrides(cfg, bad)
