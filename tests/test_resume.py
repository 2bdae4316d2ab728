"""Fault tolerance: a run killed with SIGKILL and started again with the same
command continues from its last checkpoint and ends after the same number of
steps (with the weights of an uninterrupted run); a NaN stops training naming
the step and keeps the last good checkpoint; a corrupt or truncated checkpoint
is detected and the previous one used; TensorBoard logs.

This file doubles as the killed child's script: ``python tests/test_resume.py OUT``.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from toy_flow import small_model, stop_process, toy_data

from cinn.callbacks import Checkpoints, TrainingDiverged
from cinn.training import train

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EPOCHS, STEPS = 3, 4  # 64 samples, global batch 16


def weights_of(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def run(out, delay=0.0):
    """The training the kill test runs (in a child) and compares with (here)."""
    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print(f"trained a step: epoch batch {batch + 1}", flush=True)
            time.sleep(delay)

    keras.utils.set_random_seed(0)
    model = small_model()
    train(model, toy_data(), epochs=EPOCHS, batch_size=16, learning_rate=3e-3, out_dir=out,
          checkpoint_every=2, verbose=0, callbacks=[Slow()], tensorboard=False, seed=0)
    return model


def _child_main(out):
    model = run(out, delay=0.4)
    np.savez(os.path.join(out, "final.npz"), *weights_of(model))
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    with open(os.path.join(out, "state.json"), "w") as f:
        json.dump({"steps": steps}, f)


def _start(out):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _load(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow" and not os.environ.get("CINN_SLOW"),
                    reason="three trainings compile too slowly on JAX for CI; the resume "
                    "code is backend-independent (CINN_SLOW=1 runs it on JAX too)")
def test_kill_9_then_same_command_resumes_at_checkpoint(tmp_path):
    out = tmp_path / "run"
    ckpts = Checkpoints(out / "checkpoints")
    first = _start(out)
    try:
        deadline = time.time() + 180
        while not ckpts.steps() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert ckpts.steps(), "no checkpoint before the run ended or timed out"
        os.killpg(first.pid, signal.SIGKILL)  # kill -9 in the middle of training
        first.wait(timeout=10)
    finally:
        log1 = stop_process(first)
    assert first.returncode == -signal.SIGKILL
    assert not (out / "state.json").exists(), "the first run should not have finished"
    saved = ckpts.latest_step()
    assert 2 <= saved < EPOCHS * STEPS, log1

    second = _start(out)  # the same command again
    try:
        second.wait(timeout=180)
    finally:
        log2 = stop_process(second)
    assert second.returncode == 0, log2[-3000:]
    m = re.search(r"resuming from checkpoint at step (\d+) of (\d+)", log2)
    assert m, log2[-3000:]
    assert int(m.group(1)) == saved and int(m.group(2)) == EPOCHS * STEPS
    # only the missing steps ran, and the run ends at the same total step count
    assert log2.count("trained a step") == EPOCHS * STEPS - saved
    assert f"finished at step {EPOCHS * STEPS}" in log2
    assert json.loads((out / "state.json").read_text())["steps"] == EPOCHS * STEPS
    assert ckpts.latest_step() == EPOCHS * STEPS

    # the resumed run ends with the weights of an uninterrupted one
    reference = run(tmp_path / "uninterrupted")
    for a, b in zip(_load(out / "final.npz"), weights_of(reference)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


class WithNaN(keras.utils.PyDataset):
    """``STEPS`` batches per epoch; batch ``bad_batch`` of epoch ``bad_epoch`` has a NaN."""

    def __init__(self, bad_epoch, bad_batch):
        super().__init__()
        self.x, self.c = toy_data()
        self.bad = (bad_epoch, bad_batch)
        self.epochs_begun = 0

    def __len__(self):
        return STEPS

    def __getitem__(self, i):
        x = self.x[16 * i:16 * (i + 1)].copy()
        if (self.epochs_begun - 1, i) == self.bad:
            x[3, 2, 2, 0] = np.nan
        return ((x, self.c[16 * i:16 * (i + 1)]),)

    def on_epoch_begin(self):  # (Keras calls on_epoch_end also when fit starts)
        self.epochs_begun += 1


def test_nan_stops_naming_the_step_and_keeps_last_good_checkpoint(tmp_path):
    model = small_model()
    data = WithNaN(bad_epoch=1, bad_batch=2)  # global step 4 + 3 = 7
    with pytest.raises(TrainingDiverged) as err:
        train(model, data, epochs=EPOCHS, out_dir=tmp_path, checkpoint_every=2, verbose=0,
              tensorboard=False)
    msg = str(err.value)
    assert "non-finite loss" in msg and "at step 7 " in msg and "(epoch 2, batch 3)" in msg
    assert "last good checkpoint (step 6)" in msg
    ckpts = Checkpoints(tmp_path / "checkpoints")
    assert ckpts.latest_step() == 6  # nothing saved after the NaN
    fresh = small_model()
    fresh.compile(optimizer=keras.optimizers.Adam())
    info = ckpts.restore(fresh)
    assert info["step"] == 6 and info["epoch"] == 1 and info["batch"] == 2
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 6
    assert all(np.all(np.isfinite(w)) for w in weights_of(fresh))
    # the end-of-epoch model file is from before the NaN as well
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert all(np.all(np.isfinite(w)) for w in weights_of(loaded))


def test_corrupt_or_truncated_checkpoint_falls_back_to_previous(tmp_path, capsys):
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    ckpts = Checkpoints(tmp_path, keep=5)
    saved = {}
    for step in (1, 2, 3):
        for v in model.trainable_variables:
            v.assign(v + 0.01 * step)
        ckpts.save(model, step, epoch=0, batch=step)
        saved[step] = weights_of(model)
    w3 = ckpts._paths(3)[0]
    data = bytearray(w3.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte, same size
    w3.write_bytes(bytes(data))
    w2 = ckpts._paths(2)[0]
    w2.write_bytes(w2.read_bytes()[: w2.stat().st_size // 2])  # half-written
    fresh = small_model()
    fresh.compile(optimizer=keras.optimizers.Adam())
    info = ckpts.restore(fresh)
    assert info["step"] == 1
    for a, b in zip(weights_of(fresh), saved[1]):
        np.testing.assert_array_equal(a, b)
    err = capsys.readouterr().err
    assert "step-000003.weights.h5 is corrupt (checksum mismatch)" in err
    assert "step-000002.weights.h5 is corrupt (truncated" in err
    assert ckpts.steps() == [1]  # the corrupt ones are set aside (*.corrupt)
    # a checkpoint write killed half-way leaves only a temporary file: ignored
    (tmp_path / ".tmp-1-step-000009.weights.h5").write_bytes(b"partial")
    assert ckpts.restore(fresh)["step"] == 1
    assert not (tmp_path / ".tmp-1-step-000009.weights.h5").exists()


def test_tensorboard_logs_bits_per_dim_and_sample_grid(tmp_path):
    pytest.importorskip("tensorflow")
    from tensorflow.core.util import event_pb2
    import tensorflow as tf

    x, c = toy_data(32)
    model = small_model()
    train(model, (x, c), (x[:16], c[:16]), epochs=1, batch_size=16, out_dir=tmp_path,
          verbose=0, seed=0)
    tags = {}
    for f in (tmp_path / "tensorboard").iterdir():
        for rec in tf.data.TFRecordDataset(str(f)):
            ev = event_pb2.Event.FromString(rec.numpy())
            for v in ev.summary.value:
                tags[v.tag] = v
    assert {"bits_per_dim/train", "bits_per_dim/val", "samples"} <= set(tags)
    bpd = tf.make_ndarray(tags["bits_per_dim/val"].tensor)
    assert np.isfinite(bpd) and 0 < bpd < 10
    png = tf.make_ndarray(tags["samples"].tensor)[2]
    img = tf.io.decode_png(png).numpy()
    assert img.shape == (4 * 8 + 3 * 2, 5 * 8 + 4 * 2, 3)  # 4 conditions x (cond + 4 samples)
    assert (tmp_path / "samples" / "epoch-001.png").exists()


def test_cosine_schedule_resumes_on_the_same_curve(tmp_path):
    """``lr_schedule="cosine"``: 1e-3 at the first epoch, the floor at the last, and a
    run stopped after one epoch and resumed sets the rate of the uninterrupted run."""
    from cinn.training import cosine_lr

    rates = [cosine_lr(e, EPOCHS, 1e-3) for e in range(EPOCHS)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(5e-5)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="lr_schedule"):
        train(small_model(), toy_data(), epochs=1, verbose=0, lr_schedule="linear")

    def fit(epochs):
        keras.utils.set_random_seed(0)
        model = small_model()
        train(model, toy_data(), epochs=epochs, batch_size=16, learning_rate=1e-3,
              out_dir=tmp_path, verbose=0, tensorboard=False, lr_schedule="cosine")
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))

    # the first call's cosine runs over 1 epoch (rate 1e-3); the resumed call
    # continues at epoch 2 of EPOCHS on the EPOCHS curve
    assert fit(1) == pytest.approx(1e-3)
    assert fit(EPOCHS) == pytest.approx(rates[-1], rel=1e-5)


class WithSpike(keras.utils.PyDataset):
    """``STEPS`` batches per epoch; from epoch ``bad_epoch`` on, every batch is
    scaled by 1000 (the loss jumps by about 10 bits/dim) while ``spike`` is set."""

    def __init__(self, bad_epoch):
        super().__init__()
        self.x, self.c = toy_data()
        self.bad_epoch = bad_epoch
        self.spike = True
        self.epochs_begun = 0

    def __len__(self):
        return STEPS

    def __getitem__(self, i):
        x = self.x[16 * i:16 * (i + 1)]
        if self.spike and self.epochs_begun - 1 >= self.bad_epoch:
            x = 1000 * x
        return ((x, self.c[16 * i:16 * (i + 1)]),)

    def on_epoch_begin(self):
        self.epochs_begun += 1


def test_runaway_loss_stops_and_the_same_command_resumes_from_the_best_epoch(tmp_path):
    model = small_model()
    data = WithSpike(bad_epoch=2)  # steps 9, 10, ... are 1000x the data
    with pytest.raises(TrainingDiverged) as err:
        train(model, data, epochs=EPOCHS + 1, out_dir=tmp_path, checkpoint_every=2,
              verbose=0, tensorboard=False)
    msg = str(err.value)
    assert "loss ran away at step 9 " in msg and "(epoch 3, batch 1)" in msg, msg
    assert "best checkpoint (step 8, epoch 2" in msg and "resumes from it" in msg, msg
    ckpts = Checkpoints(tmp_path / "checkpoints")
    assert ckpts.latest_step() == 8 and ckpts.best()["step"] == 8
    # the same command (the data mended) resumes from the best epoch and finishes
    data.spike = False
    train(small_model(), data, epochs=EPOCHS + 1, out_dir=tmp_path, checkpoint_every=2,
          verbose=0, tensorboard=False)
    assert ckpts.latest_step() == (EPOCHS + 1) * STEPS


def test_best_checkpoint_outlives_pruning_and_later_ones_can_be_set_aside(tmp_path):
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    ckpts = Checkpoints(tmp_path, keep=2)
    for step, loss in zip((1, 2, 3, 4, 5), (3.0, 1.0, 2.0, 2.5, 9.0)):
        ckpts.save(model, step, epoch=step, batch=0)
        ckpts.mark_best(step, step, "loss", loss)
    assert ckpts.steps() == [2, 4, 5]  # the newest two and the best
    assert ckpts.best() == {"step": 2, "epoch": 2, "monitor": "loss", "value": 1.0,
                            "loss": 1.0}
    assert ckpts.set_aside_after(2) == [4, 5]
    assert ckpts.steps() == [2]
    assert sorted(p.name for p in tmp_path.glob("*.diverged")) == [
        "step-000004.json.diverged", "step-000004.weights.h5.diverged",
        "step-000005.json.diverged", "step-000005.weights.h5.diverged"]
    assert ckpts.restore(model)["step"] == 2


def test_divergence_margin_checked_and_off(tmp_path):
    with pytest.raises(ValueError, match="divergence_margin"):
        train(small_model(), toy_data(), divergence_margin=0, verbose=0, tensorboard=False)
    data = WithSpike(bad_epoch=1)
    train(small_model(), data, epochs=2, out_dir=tmp_path, verbose=0, tensorboard=False,
          divergence_margin=None)  # no check: the run goes through the spike
    assert Checkpoints(tmp_path / "checkpoints").latest_step() == 2 * STEPS


if __name__ == "__main__":
    _child_main(sys.argv[1])
