"""Training callbacks: step checkpoints that survive kills (the best epoch's kept
apart), a guard against NaN/Inf and against a loss that runs away,
atomic model saving, the history of every epoch (``history.json``, kept across
resumed runs) and TensorBoard logs (bits/dim and sample grids).

A file that cannot be written (a full disk, a folder made read-only) stops training
with a ``SaveFailed`` error of one line naming the file and the reason; what was
written before stays intact (every write goes to a temporary file renamed over the
old one), so the same command resumes from the last good checkpoint once the cause
is fixed."""
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
    """The loss became NaN or infinite, or ran far above its best."""


class SaveFailed(CinnError):
    """A checkpoint, the model file or the history could not be written."""


def _reason(err):
    """One line for an ``OSError`` (h5py's run to several lines)."""
    if getattr(err, "strerror", None):
        return str(err.strerror)
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:200]


def _save_failed(what, path, err, kept):
    return SaveFailed(f"could not write {what} {path} ({_reason(err)}); {kept}; free some "
                      "space or make the folder writable, then run the same command again "
                      "to resume")


def _write_weights(model, path):
    """Write ``model``'s weights (and optimizer state) to ``path`` (``.weights.h5``):
    the one place checkpoints are written (the fault tests replace it)."""
    model.save_weights(path)


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path``: a temporary file, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    ``*.corrupt`` and the previous one is used. The newest ``keep`` are kept, and
    also the *best* one (``best.json``: the epoch-end checkpoint of the lowest
    loss, see ``mark_best``), however old, so that a run whose loss runs away
    still has the weights of its best epoch.
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
        weights, meta = self._paths(step)
        tmp = self.folder / f".tmp-{os.getpid()}-step-{int(step):06d}.weights.h5"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_weights(model, tmp)
            _fsync(tmp)
            info = {"step": int(step), "epoch": int(epoch), "batch": int(batch),
                    "file": weights.name, "bytes": tmp.stat().st_size, "sha256": _sha256(tmp)}
            os.replace(tmp, weights)
            write_json_atomic(meta, info)   # commits the checkpoint
        except OSError as err:
            for path in (tmp, weights if not meta.exists() else None):
                try:
                    if path is not None:
                        path.unlink(missing_ok=True)
                except OSError:
                    pass
            last = self.latest_step()
            kept = (f"the last good checkpoint (step {last}) is kept" if last is not None
                    else "no checkpoint was written before")
            raise _save_failed(f"the checkpoint of step {int(step)} to", self.folder, err,
                               kept) from None
        self._prune()
        return info

    def best(self):
        """``best.json``: ``{"step", "epoch", "monitor", "value", "loss"}`` of the
        best epoch-end checkpoint (``loss``: the epoch's training loss), or ``None``."""
        try:
            info = json.loads((self.folder / "best.json").read_text())
            return info if int(info["step"]) in self.steps() else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def mark_best(self, step, epoch, monitor, value, loss=None):
        """Record checkpoint ``step`` as the best if ``value`` (of ``monitor``, lower
        is better) beats the recorded one; returns whether it did."""
        old = self.best()
        if not current_is_chief() or not math.isfinite(value) or step not in self.steps() or (
                old is not None and old["monitor"] == monitor and old["value"] <= value):
            return False
        try:
            write_json_atomic(self.folder / "best.json", {
                "step": int(step), "epoch": int(epoch), "monitor": monitor,
                "value": float(value),
                "loss": float(value if loss is None or not math.isfinite(loss) else loss)})
        except OSError as err:
            raise _save_failed("the record of the best checkpoint", self.folder / "best.json",
                               err, f"the checkpoint of step {int(step)} is kept") from None
        self._prune()
        return True

    def set_aside_after(self, step):
        """Rename the checkpoints newer than ``step`` to ``*.diverged`` (kept, not
        used by ``restore``); returns their steps."""
        later = [s for s in self.steps() if s > step]
        for s in later:
            self._set_aside(s, ".diverged")
        return later

    def _prune(self):
        best = self.best()
        for step in self.steps()[:-self.keep]:
            if best is not None and step == int(best["step"]):
                continue
            for p in reversed(self._paths(step)):   # the metadata first: uncommitted
                try:
                    p.unlink(missing_ok=True)
                except OSError as err:              # pruning can wait for the next save
                    _note(f"could not remove the old checkpoint {p} ({_reason(err)})")
                    return

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
                self._set_aside(step, ".corrupt")
                continue
            return info
        return None

    def _set_aside(self, step, suffix):
        """Rename checkpoint ``step``'s files to ``NAME + suffix`` (the weights
        first: a checkpoint cut in the middle is never an uncommitted weights file,
        which ``restore`` would delete)."""
        if not current_is_chief():
            return
        for p in self._paths(step):
            if p.exists():
                os.replace(p, p.with_name(p.name + suffix))


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
    """Stop training at the first non-finite loss, or when the loss runs away, with
    a message naming the step.

    Runaway: the mean of the last ``window`` batch losses (Keras' running mean of
    the epoch, turned back into per-batch losses) more than ``margin`` (bits/dim
    for a ``ConditionalINN``; ``None``: off) above the best such mean of this run
    and the best epoch of the checkpoints' ``best.json``. The checkpoints written
    after the best one are then set aside (``*.diverged``), so that the same
    command resumes from the best epoch.

    Put it before any checkpointing callback: it raises before they can save
    the broken weights, so the last good checkpoint stays intact.
    """

    def __init__(self, checkpoint_hint=None, counter=None, checkpoints=None, margin=None,
                 window=50):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint
        self.counter = counter
        self.checkpoints = checkpoints
        self.margin = None if margin is None else float(margin)
        self.window = max(1, int(window))
        self._epoch = 0
        self._recent, self._best, self._prev = [], math.inf, None

    def on_train_begin(self, logs=None):
        best = self.checkpoints.best() if self.checkpoints is not None else None
        seed = float(best.get("loss", math.inf)) if best is not None else math.inf
        self._best = seed if math.isfinite(seed) else math.inf

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._prev = None

    def _where(self, batch):
        if self.counter is not None:
            return (f"step {self.counter.step} (epoch {self.counter.epoch + 1}, "
                    f"batch {self.counter.batch})")
        return f"epoch {self._epoch + 1}, step {batch + 1}"

    def _batch_loss(self, batch, mean):
        """Keras logs the running mean of the epoch: the batch's own loss from it."""
        prev, self._prev = self._prev, (batch, mean)
        if prev is None or prev[0] != batch - 1:
            return mean if batch == 0 else None
        return (batch + 1) * mean - batch * prev[1]

    def _check_runaway(self, batch, mean):
        loss = self._batch_loss(batch, mean)
        if loss is None:
            return
        self._recent = (self._recent + [loss])[-self.window:]
        if len(self._recent) < self.window:
            return
        now = float(np.mean(self._recent))
        if now <= self._best + self.margin:
            self._best = min(self._best, now)
            return
        self.model.stop_training = True
        hint = ""
        ckpts = self.checkpoints
        best = ckpts.best() if ckpts is not None else None
        if best is not None:
            aside = ckpts.set_aside_after(int(best["step"]))
            hint = (f"; the best checkpoint (step {best['step']}, epoch {best['epoch']}, "
                    f"{best['monitor']} {best['value']:.4g}) is kept in {ckpts.folder}"
                    + (f", the {len(aside)} after it renamed *.diverged" if aside else "")
                    + ": the same command resumes from it")
        elif ckpts is not None:
            hint = (f"; no epoch had ended, so no checkpoint is known good (those in "
                    f"{ckpts.folder} are kept)")
        raise TrainingDiverged(
            f"the loss ran away at {self._where(batch)}: the mean of the last "
            f"{self.window} batches is {now:.4g}, more than {self.margin:g} above the best "
            f"({self._best:.4g}){hint}; lower the learning rate or set clipnorm")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if math.isfinite(float(loss)):
            if self.margin is not None:
                self._check_runaway(batch, float(loss))
            return
        self.model.stop_training = True
        where = self._where(batch)
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
    the chief process writes; only finite weights are saved). The last step of an
    epoch is saved at the epoch's end only, after the validation and the
    ``HistoryLog``: a checkpoint that ends an epoch comes after its history."""

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
        spe = self.counter.steps_per_epoch
        last = spe and self.counter.batch >= spe   # the epoch's end saves it, after the
        if self.every and self.counter.step % self.every == 0 and not last:  # history
            self._save(self.counter.epoch, self.counter.batch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0)
        logs = logs or {}
        monitor = "val_loss" if "val_loss" in logs else "loss"
        if monitor in logs and self.last_saved == self.counter.step:
            self.checkpoints.mark_best(self.counter.step, epoch + 1, monitor,
                                       float(logs[monitor]), float(logs.get("loss", math.nan)))


class SaveModel(keras.callbacks.Callback):
    """Save the whole model (``.keras``) at every epoch end, atomically (write a
    temporary file, then rename), and only when all weights are finite."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        if weights_are_finite(self.model):
            save_atomic(self.model, self.path)


# -- the history of every epoch ----------------------------------------------------------
def read_history(path):
    """The epochs recorded in ``path`` (``history.json``): ``{"epochs": [1, 2, ...],
    "steps": [...], "history": {"loss": [...], ...}, ...}`` (the values of an epoch
    that did not log a key are ``None``; other keys of the file are kept); empty
    lists when there is no file. A file that is not valid JSON is reported, kept as
    ``history.json.corrupt`` and counts as empty."""
    path = Path(path)
    empty = {"epochs": [], "steps": [], "history": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("history", {}), dict):
            raise ValueError("not a history")
    except FileNotFoundError:
        return empty
    except (OSError, ValueError) as err:
        _note(f"{path} is unreadable ({_reason(err) if isinstance(err, OSError) else err}); "
              f"kept as {path.name}.corrupt, the history starts again")
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError:
            pass
        return empty
    history = {k: list(v) for k, v in data.get("history", {}).items()}
    count = max((len(v) for v in history.values()), default=0)
    data["history"] = history
    data["epochs"] = list(data.get("epochs") or range(1, count + 1))   # older files
    data.setdefault("steps", [None] * len(data["epochs"]))
    return data


class HistoryLog(keras.callbacks.Callback):
    """Every epoch's logs (loss, val_loss, ...) and global step written to ``path``
    (``history.json``) at the epoch's end, atomically, so that a run stopped at any
    moment keeps the epochs it finished and a resumed run adds to them. Call
    ``keep_before(epoch)`` when resuming at ``epoch`` (0-based): the records of
    that epoch and later ones (written before a checkpoint that was lost) are
    dropped, as the run does them again. Put it before ``Checkpointer``: an epoch is
    in the history before its checkpoint commits it. Only the chief writes."""

    def __init__(self, path, counter=None):
        super().__init__()
        self.path, self.counter = Path(path), counter
        self.data = None
        if current_is_chief():
            self.data = read_history(self.path)
            for left in self.path.parent.glob(f".tmp-*-{self.path.name}"):  # a kill's
                left.unlink(missing_ok=True)

    def keep_before(self, epoch):
        if self.data is None:
            return
        keep = [i for i, e in enumerate(self.data["epochs"]) if e <= int(epoch)]
        for key in ("epochs", "steps"):
            self.data[key] = [self.data[key][i] for i in keep]
        self.data["history"] = {k: [v[i] for i in keep if i < len(v)]
                                for k, v in self.data["history"].items()}

    def on_epoch_end(self, epoch, logs=None):
        if self.data is None:
            return
        self.keep_before(epoch)
        data, count = self.data, len(self.data["epochs"])
        data["epochs"].append(int(epoch) + 1)
        data["steps"].append(None if self.counter is None else int(self.counter.step))
        for key, value in (logs or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            column = data["history"].setdefault(key, [])
            column.extend([None] * (count - len(column)))
            column.append(value if math.isfinite(value) else None)
        for column in data["history"].values():
            column.extend([None] * (count + 1 - len(column)))
        try:
            write_json_atomic(self.path, data)
        except OSError as err:
            raise _save_failed("the history to", self.path, err,
                               f"the epochs before epoch {epoch + 1} are kept in it"
                               if self.path.exists() else "no history was written before"
                               ) from None


def save_atomic(model, path):
    """Save to a temporary file, then rename. Under a multi-worker strategy all
    workers call it; the others write to a temporary folder (saving is collective)."""
    path = Path(path)
    if not current_is_chief():
        with tempfile.TemporaryDirectory() as tmp:
            _save(model, Path(tmp) / path.name)
        return None
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(model, tmp)
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        kept = "the model file of before is kept" if path.exists() else "no model file yet"
        raise _save_failed("the model to", path, err, kept) from None
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
            try:
                self._write_png(grid, epoch)
            except OSError as err:  # a picture must never stop training
                _note(f"no sample picture this epoch in {self.png_dir} ({_reason(err)})")
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
