"""Training callbacks: step checkpoints that survive kills, a NaN/Inf guard,
atomic model saving, and TensorBoard logs (bits/dim and sample grids)."""
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from cinn.distribute import current_is_chief
from cinn.errors import CinnError


class TrainingDiverged(CinnError):
    """The loss became NaN or infinite."""


def weights_are_finite(model):
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights
               if "float" in str(w.dtype))


def _note(msg):
    print(f"[cinn] {msg}", file=sys.stderr, flush=True)


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- checkpoints ----------------------------------------------------------------------
class Checkpoints:
    """A folder of step checkpoints: ``step-000120.weights.h5`` (model and
    optimizer state) and its ``step-000120.json`` (step, epoch, batch, size and
    SHA-256 of the weights file).

    Writes are atomic (temporary file, fsync, rename; the JSON, written last,
    commits the checkpoint), so a kill at any moment leaves either the new
    checkpoint or none. ``restore`` checks size and hash and loads the newest
    valid checkpoint; a corrupt or half-written one is reported, renamed to
    ``*.corrupt`` and the previous one is used. The newest ``keep`` are kept.
    """

    PATTERN = re.compile(r"^step-(\d+)\.json$")

    def __init__(self, folder, keep=3):
        self.folder = Path(folder)
        self.keep = max(1, int(keep))

    def _paths(self, step):
        stem = f"step-{int(step):06d}"
        return self.folder / f"{stem}.weights.h5", self.folder / f"{stem}.json"

    def steps(self):
        """Steps of the committed checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [int(m.group(1)) for m in map(self.PATTERN.match, os.listdir(self.folder)) if m]
        return sorted(found)

    def latest_step(self):
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, model, step, epoch, batch):
        """Save model + optimizer state as the checkpoint of global ``step``.

        Under a multi-worker strategy every worker must call this (saving can
        create variables, a collective operation); only the chief keeps files.
        """
        if not current_is_chief():
            with tempfile.TemporaryDirectory() as tmp:
                model.save_weights(Path(tmp) / "worker.weights.h5")
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        weights, meta = self._paths(step)
        tmp = self.folder / f".tmp-{os.getpid()}-step-{int(step):06d}.weights.h5"
        model.save_weights(tmp)
        _fsync(tmp)
        info = {"step": int(step), "epoch": int(epoch), "batch": int(batch),
                "file": weights.name, "bytes": tmp.stat().st_size, "sha256": _sha256(tmp)}
        os.replace(tmp, weights)
        tmp_meta = meta.with_name(f".tmp-{os.getpid()}-{meta.name}")
        tmp_meta.write_text(json.dumps(info, indent=1))
        _fsync(tmp_meta)
        os.replace(tmp_meta, meta)
        self._prune()
        return info

    def _prune(self):
        for step in self.steps()[:-self.keep]:
            for p in self._paths(step):
                p.unlink(missing_ok=True)

    def verify(self, step):
        """The checkpoint's metadata if it is intact, else raise ``ValueError``."""
        weights, meta = self._paths(step)
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            raise ValueError("unreadable metadata") from None
        if not weights.exists():
            raise ValueError("weights file missing")
        size = weights.stat().st_size
        if size != info.get("bytes"):
            raise ValueError(f"truncated ({size} bytes, expected {info.get('bytes')})")
        if _sha256(weights) != info.get("sha256"):
            raise ValueError("checksum mismatch")
        return info

    def restore(self, model):
        """Load the newest intact checkpoint into ``model`` (optimizer included).

        Returns its metadata dict, or ``None`` when there is no usable one.
        """
        if self.folder.is_dir() and current_is_chief():
            committed = {self._paths(s)[0].name for s in self.steps()}
            for path in self.folder.iterdir():  # leftovers of writes interrupted by a kill
                if path.name.startswith(".tmp-") or (
                        path.name.endswith(".weights.h5") and path.name not in committed):
                    path.unlink(missing_ok=True)
        for step in reversed(self.steps()):
            try:
                info = self.verify(step)
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(self._paths(step)[0])
            except Exception as err:  # noqa: BLE001 - any failure means: use an older one
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
                _note(f"checkpoint {self._paths(step)[0]} is corrupt ({reason}); "
                      "using the previous one")
                self._quarantine(step)
                continue
            return info
        return None

    def _quarantine(self, step):
        if not current_is_chief():
            return
        for p in self._paths(step):
            if p.exists():
                os.replace(p, p.with_name(p.name + ".corrupt"))


class StepCounter(keras.callbacks.Callback):
    """Counts optimizer steps across ``fit`` calls (starts from the optimizer's
    ``iterations`` plus ``step_offset``, the steps before a warm start, at
    ``on_train_begin``) and knows the epoch and batch."""

    def __init__(self, steps_per_epoch=None, batch_offset=0, step_offset=0):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.batch_offset = int(batch_offset)
        self.step_offset = int(step_offset)
        self.step = 0
        self.epoch = 0
        self.batch = 0

    def on_train_begin(self, logs=None):
        self.step = self.step_offset + int(
            keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.batch = self.batch_offset + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.batch_offset = 0


class NaNGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite loss with a message naming the step.

    Put it before any checkpointing callback: it raises before they can save
    the broken weights, so the last good checkpoint stays intact.
    """

    def __init__(self, checkpoint_hint=None, counter=None, checkpoints=None):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint
        self.counter = counter
        self.checkpoints = checkpoints
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        if self.counter is not None:
            where = (f"step {self.counter.step} (epoch {self.counter.epoch + 1}, "
                     f"batch {self.counter.batch})")
        else:
            where = f"epoch {self._epoch + 1}, step {batch + 1}"
        hint = ""
        if self.checkpoints is not None:
            last = self.checkpoints.latest_step()
            hint = (f"; the last good checkpoint (step {last}) is kept in "
                    f"{self.checkpoints.folder}" if last is not None else
                    "; no checkpoint was written before it")
        elif self.checkpoint_hint:
            hint = f"; the last good checkpoint is kept in {self.checkpoint_hint}"
        raise TrainingDiverged(f"non-finite loss ({float(loss)}) at {where}{hint}; "
                               "lower the learning rate or set clipnorm")


class Checkpointer(keras.callbacks.Callback):
    """Checkpoint every ``every`` optimizer steps and at every epoch end (only
    the chief process writes; only finite weights are saved)."""

    def __init__(self, checkpoints, counter, every=None):
        super().__init__()
        self.checkpoints, self.counter = checkpoints, counter
        self.every = int(every) if every else None
        self.last_saved = None

    def on_train_begin(self, logs=None):
        self.last_saved = self.checkpoints.latest_step()

    def _save(self, epoch, batch):
        step = self.counter.step
        if step == self.last_saved:
            return
        model = self.model
        if not weights_are_finite(model):
            return
        self.checkpoints.save(model, step, epoch, batch)
        self.last_saved = step

    def on_train_batch_end(self, batch, logs=None):
        if self.every and self.counter.step % self.every == 0:
            self._save(self.counter.epoch, self.counter.batch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0)


class SaveModel(keras.callbacks.Callback):
    """Save the whole model (``.keras``) at every epoch end, atomically (write a
    temporary file, then rename), and only when all weights are finite."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        if weights_are_finite(self.model):
            save_atomic(self.model, self.path)


def save_atomic(model, path):
    """Save to a temporary file, then rename. Under a multi-worker strategy all
    workers call it; the others write to a temporary folder (saving is collective)."""
    path = Path(path)
    if not current_is_chief():
        with tempfile.TemporaryDirectory() as tmp:
            _save(model, Path(tmp) / path.name)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    _save(model, tmp)
    os.replace(tmp, path)
    return path


def _save(model, path):
    if path.suffix == ".keras":
        model.save(path)
    else:
        model.save_weights(path)


# -- TensorBoard ------------------------------------------------------------------------
def _to_rgb(a):
    """(..., H, W, C) float -> same with 3 channels (grey repeated, extra dropped)."""
    if a.shape[-1] == 1:
        return np.repeat(a, 3, axis=-1)
    if a.shape[-1] == 2:
        return np.concatenate([a, np.zeros_like(a[..., :1])], axis=-1)
    return a[..., :3]


def _unit(a):
    a = np.asarray(a, np.float32)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if lo >= -0.05 and hi <= 1.05:
        return np.clip(a, 0, 1)
    return (a - lo) / max(hi - lo, 1e-8)


def sample_grid(c, samples, gap=2):
    """Default picture of samples: one row per condition, the condition first
    (when it is an image; resized to the sample size), then the samples.
    Values in [0, 1] are shown as they are, others min-max scaled. Returns
    float32 (H, W, 3) in [0, 1]."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 5:
        raise ValueError("sample grids need image samples (batch, n, H, W, C)")
    b, n, h, w, _ = samples.shape
    tiles = _to_rgb(_unit(samples))
    cols = n
    cond = None
    if c is not None and np.ndim(c) == 4:
        c = _to_rgb(_unit(np.asarray(c, np.float32)))
        ry, rx = max(1, h // c.shape[1]), max(1, w // c.shape[2])
        cond = np.repeat(np.repeat(c, ry, axis=1), rx, axis=2)[:, :h, :w]
        cols += 1
    grid = np.ones((b * h + (b - 1) * gap, cols * w + (cols - 1) * gap, 3), np.float32)
    for i in range(b):
        row = ([cond[i]] if cond is not None else []) + list(tiles[i])
        for j, tile in enumerate(row):
            y, x = i * (h + gap), j * (w + gap)
            grid[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return grid


def _tf_metadata(plugin, data_class):
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    meta.data_class = getattr(summary_pb2, data_class)
    return meta


def _tf_scalar(tf, tag, value, step):
    """A TensorBoard scalar written with core TensorFlow only (``tf.summary.scalar``
    needs the ``tensorboard`` package)."""
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step,
                     metadata=_tf_metadata("scalars", "DATA_CLASS_SCALAR"))


def _tf_image(tf, tag, img, step):
    """A TensorBoard image (float (H, W, 3) in [0, 1]) with core TensorFlow only."""
    png = tf.image.encode_png(tf.constant((img * 255 + 0.5).astype(np.uint8)))
    tensor = tf.stack([tf.as_string(img.shape[1]), tf.as_string(img.shape[0]), png])
    tf.summary.write(tag, tensor, step=step,
                     metadata=_tf_metadata("images", "DATA_CLASS_BLOB_SEQUENCE"))


class TensorBoardLogger(keras.callbacks.Callback):
    """Every epoch: ``bits_per_dim/train`` and ``bits_per_dim/val`` scalars and
    an image ``samples`` of ``n`` samples for each fixed condition (same seed
    every epoch, so the grids show how training changes them), written with
    ``tf.summary`` to ``log_dir``; the grid is also saved as
    ``png_dir/epoch-NNN.png`` when given.

    ``render(c, samples) -> (H, W, 3)`` float in [0, 1] or uint8 overrides the
    default ``sample_grid`` (e.g. to turn Lab into RGB). Needs TensorFlow (not
    the ``tensorboard`` package) for the event files; without TensorFlow (JAX
    only) the logger writes just the PNGs, with a note.
    """

    def __init__(self, log_dir, conditions=None, n=4, temperature=0.8, seed=0, render=None,
                 png_dir=None):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.conditions = conditions
        self.n, self.temperature, self.seed = int(n), float(temperature), int(seed)
        self.render = render or sample_grid
        self.png_dir = None if png_dir is None else Path(png_dir)
        self._writer = None
        self._tf = None
        try:
            import tensorflow as tf  # noqa: F401

            self._tf = tf
        except ImportError:
            _note("tensorflow is not installed: no TensorBoard logs (sample grids go to PNG)")

    def _grid(self):
        samples = self.model.sample(self.conditions, n=self.n, temperature=self.temperature,
                                    seed=self.seed)
        grid = np.asarray(self.render(np.asarray(self.conditions),
                                      keras.ops.convert_to_numpy(samples)))
        if grid.dtype == np.uint8:
            grid = grid.astype(np.float32) / 255.0
        return np.clip(np.nan_to_num(grid), 0, 1)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        grid = None
        if self.conditions is not None:  # on every worker: keep them in step
            try:
                grid = self._grid()
            except Exception as err:  # noqa: BLE001 - logging must never stop training
                _note(f"no sample grid this epoch ({type(err).__name__}: {err})")
        if not current_is_chief():
            return
        if grid is not None and self.png_dir is not None:
            self._write_png(grid, epoch)
        if self._tf is None:
            return
        tf = self._tf
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        with self._writer.as_default(), tf.device("/cpu:0"):
            for key, tag in (("loss", "bits_per_dim/train"), ("val_loss", "bits_per_dim/val")):
                if key in logs:
                    _tf_scalar(tf, tag, float(logs[key]), epoch + 1)
            if grid is not None:
                _tf_image(tf, "samples", grid, epoch + 1)
        self._writer.flush()

    def _write_png(self, grid, epoch):
        try:
            from PIL import Image
        except ImportError:
            return
        self.png_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray((grid * 255 + 0.5).astype(np.uint8)).save(
            self.png_dir / f"epoch-{epoch + 1:03d}.png")

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()
