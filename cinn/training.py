"""Maximum-likelihood training of a ``ConditionalINN`` with ``model.fit``, resumable.

Checkpoints (``out_dir/checkpoints``, see ``cinn.callbacks.Checkpoints``) hold
the model and optimizer state and the global step. Running the same training
again after a kill loads the newest intact checkpoint and continues at that
step, in the middle of an epoch if need be, so the run ends after the same
total number of steps as an uninterrupted one (exactly the same batches when
the data is a ``keras.utils.PyDataset`` whose batches depend only on their
index and its ``epoch`` attribute, like ``cinn.apps.common.data.CropDataset``).

Distributed training: build the model and call ``train`` inside the scope of
a ``cinn.distribute.make_distribution(...)``; the batch size of ``data`` is the
global batch.
"""
import math
import sys
from pathlib import Path

import keras
import numpy as np

from cinn.callbacks import (Checkpointer, Checkpoints, HistoryLog, NaNGuard, SaveModel,
                            StepCounter, TensorBoardLogger)
from cinn.distribute import clip_after_all_reduce, prepare_for_fit


def first_batch(data, conditional=True):
    """``(x, c)`` of the first batch of a PyDataset, a ``(x, c)`` tuple of arrays (the
    first 256 rows), an array ``x`` (``conditional=False``; ``c`` is ``None``) or a
    re-iterable (e.g. a ``tf.data.Dataset``) yielding ``((x, c),)`` (or ``(x,)``).
    A one-shot iterator (a generator) is refused with a ``ValueError``: reading its
    first batch would take it from the training."""
    if isinstance(data, keras.utils.PyDataset):
        batch = data[0]
    elif isinstance(data, (tuple, list)) and len(data) == 1:  # fit(x=((x, c),))
        return first_batch(data[0], conditional)
    elif isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        return data[0][:256], None if data[1] is None else data[1][:256]
    elif hasattr(data, "shape"):
        return data[:256], None
    else:
        try:
            it = iter(data)
        except TypeError:
            raise ValueError(f"cannot read a first batch from {type(data).__name__}: pass "
                             "a PyDataset, a tf.data.Dataset or arrays") from None
        if it is data:
            raise ValueError("the ActNorm layers are not initialised and a one-shot iterator "
                             "cannot give its first batch twice: call model.initialize(x, c) "
                             "on a batch first (cinn.training.train does)")
        batch = next(it)
    inputs = batch[0] if isinstance(batch, tuple) and len(batch) == 1 else batch
    if not conditional:
        return (inputs[0] if isinstance(inputs, (tuple, list)) else inputs), None
    return inputs[0], inputs[1]


class ArrayDataset(keras.utils.PyDataset):
    """``(x, c)`` arrays as batches ``((x, c),)``, shuffled with a seeded
    permutation per epoch, so that batch ``i`` of epoch ``e`` is reproducible
    (what mid-epoch resuming needs)."""

    def __init__(self, x, c, batch_size=32, shuffle=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.c = x, c
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.epoch = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        n = len(self.x)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n)
                 if self.shuffle else np.arange(n))
        idx = np.sort(order[index * self.batch_size:(index + 1) * self.batch_size])
        x = np.asarray(self.x)[idx]
        return (x,) if self.c is None else ((x, np.asarray(self.c)[idx]),)

    def on_epoch_end(self):
        self.epoch += 1


class _Offset(keras.utils.PyDataset):
    """The batches ``offset, offset + 1, ...`` of a PyDataset (resuming mid-epoch)."""

    def __init__(self, base, offset, steps):
        super().__init__(workers=base.workers, use_multiprocessing=base.use_multiprocessing,
                         max_queue_size=base.max_queue_size)
        self.base, self.offset, self.steps = base, int(offset), int(steps)

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.base[index + self.offset]

    def on_epoch_end(self):
        self.base.on_epoch_end()


class _StopAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def _note(msg, verbose):
    if verbose:
        print(f"[cinn] {msg}", flush=True)


def _steps_per_epoch(data, steps_per_epoch):
    if steps_per_epoch:
        return int(steps_per_epoch)
    if isinstance(data, keras.utils.PyDataset):
        return len(data)
    try:
        n = len(data)
    except TypeError:
        return None
    return int(n) if n else None


def _set_epoch(data, epoch):
    if isinstance(getattr(data, "epoch", None), int):
        data.epoch = int(epoch)


def train(model, data, validation_data=None, epochs=1, learning_rate=1e-3, clipnorm=None,
          out_dir=None, checkpoint_every=None, callbacks=(), verbose="auto", steps_per_epoch=None,
          *, batch_size=32, keep_checkpoints=3, tensorboard=True, sample_conditions=None,
          render=None, global_clipnorm=None, seed=0, lr_schedule="constant", min_lr_ratio=0.05,
          init=None, initial_step=0, jit_compile="auto", divergence_margin=1.0):
    """Train by exact maximum likelihood (the loss is bits per dimension).

    * ``data``: a ``keras.utils.PyDataset`` (or iterable) of ``((x, c),)`` batches,
      or an ``(x, c)`` tuple of arrays (batched by ``batch_size``, shuffled by
      ``seed``). The batch size is the global batch under a distribution.
    * ActNorm layers are initialised from the first batch unless already done.
    * ``clipnorm`` clips each gradient tensor's norm, ``global_clipnorm`` the
      norm of all gradients together (of the global batch, also under a
      distribution strategy).
    * With ``out_dir``: a checkpoint (model + optimizer + step) every
      ``checkpoint_every`` steps and at every epoch end in ``out_dir/checkpoints``
      (the newest ``keep_checkpoints`` kept); a run killed and started again with
      the same arguments continues from the newest intact checkpoint, at the same
      step, and stops after the same total number of steps. ``out_dir/model.keras``
      is written after every epoch, and ``out_dir/history.json`` (every epoch's
      logs, those of earlier runs of the same ``out_dir`` included:
      ``cinn.callbacks.HistoryLog``). A file that cannot be written stops training
      with a one-line ``cinn.callbacks.SaveFailed``; what was written before is
      kept. With ``tensorboard``: TensorBoard logs in ``out_dir/tensorboard``
      (bits/dim, and a grid of samples of
      ``sample_conditions``, default: 4 conditions of the validation data; the
      grids are also saved as ``out_dir/samples/epoch-NNN.png``).
    * ``lr_schedule="cosine"``: the learning rate falls from ``learning_rate`` to
      ``min_lr_ratio * learning_rate`` along a half cosine over the ``epochs``
      (set at each epoch start, so a resumed run follows the same curve).
    * ``jit_compile``: compile the whole training step with XLA (see
      ``resolve_jit_compile``; ``"auto"``: on for JAX and for TensorFlow on a
      GPU, off on a CPU-only TensorFlow and under a ``tf.distribute`` strategy).
    * A NaN or infinite loss stops training with a ``TrainingDiverged`` error
      naming the step; the last good checkpoint stays intact. So does a loss that
      runs away: the mean of the last 50 batches (at most one epoch's) more than
      ``divergence_margin`` bits/dim (``None``: no such check) above the best of
      the run. With ``out_dir``, the epoch-end checkpoint of the lowest loss
      (``val_loss`` when there is validation data) is kept however old
      (``checkpoints/best.json``); on a runaway the checkpoints after it are renamed
      ``*.diverged`` and the same call resumes from it (lower the learning rate or
      set a clipnorm first).
    * ``init``: warm start from a ``.keras`` file (or a model) of the same
      architecture: its weights, a fresh optimizer, and the run counted from global
      step ``initial_step`` (the learning-rate schedule and the data continue from
      there; the run ends at ``epochs`` x steps per epoch). A checkpoint in
      ``out_dir`` takes precedence (resuming such a run: the same call again).

    Returns the Keras ``History`` (of all epochs run by this call).
    """
    if lr_schedule not in ("constant", "cosine"):  # before any work is done
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    if divergence_margin is not None and not (
            isinstance(divergence_margin, (int, float)) and not isinstance(divergence_margin, bool)
            and 0 < divergence_margin < math.inf):
        raise ValueError("divergence_margin must be a positive number of bits/dim or None, "
                         f"got {divergence_margin!r}")
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        data = ArrayDataset(data[0], data[1], batch_size=batch_size, seed=seed)
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2 and hasattr(
            validation_data[0], "shape"):
        validation_data = ArrayDataset(validation_data[0], validation_data[1],
                                       batch_size=batch_size, shuffle=False)
    if not model.is_initialized:
        model.initialize(*first_batch(data, conditional=model.cond_shape is not None))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm,
                                                  global_clipnorm=global_clipnorm),
                  jit_compile=resolve_jit_compile(jit_compile))
    clip_after_all_reduce(model.optimizer)
    prepare_for_fit(model)
    spe = _steps_per_epoch(data, steps_per_epoch)
    counter = StepCounter(spe)
    cbs = [counter]
    start_epoch, offset = 0, 0
    checkpoints = info = history_log = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        checkpoints = Checkpoints(out / "checkpoints", keep=keep_checkpoints)
        info = checkpoints.restore(model)
        if info is not None:
            counter.step_offset = info["step"] - int(keras.ops.convert_to_numpy(
                model.optimizer.iterations))  # > 0 in a warm-started run
            start_epoch, offset = info["epoch"], info["batch"]
            if spe and offset >= spe:
                start_epoch, offset = start_epoch + 1, 0
            total = f" of {epochs * spe}" if spe else ""
            _note(f"resuming from checkpoint at step {info['step']}{total} "
                  f"(epoch {start_epoch + 1}, batch {offset})", True)
        cbs.append(NaNGuard(counter=counter, checkpoints=checkpoints,
                            margin=divergence_margin, window=min(50, spe or 50)))
        history_log = HistoryLog(out / "history.json", counter)   # before the checkpoint
        cbs.append(history_log)
        cbs.append(Checkpointer(checkpoints, counter, every=checkpoint_every))
        cbs.append(SaveModel(out / "model.keras"))
        if tensorboard:
            cond = sample_conditions
            if cond is None:
                cond = _default_conditions(validation_data if validation_data is not None
                                           else data, model)
            cbs.append(TensorBoardLogger(out / "tensorboard", cond, render=render,
                                         png_dir=out / "samples", seed=seed))
    else:
        cbs.append(NaNGuard(counter=counter, margin=divergence_margin,
                            window=min(50, spe or 50)))
    if init is not None and (out_dir is None or info is None):
        start_epoch, offset = _warm_start(model, init, initial_step, spe, epochs)
        counter.step_offset = int(initial_step)
    if lr_schedule == "cosine":
        cbs.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: cosine_lr(epoch, epochs, learning_rate, min_lr_ratio)))
    cbs += list(callbacks)
    if history_log is not None:   # the epochs from here on are run again
        history_log.keep_before(start_epoch)

    if start_epoch >= epochs:
        _note(f"already trained for {epochs} epochs; nothing to do", True)
        return _history([], model)
    _set_epoch(data, start_epoch)
    histories = []
    if offset:
        if not isinstance(data, keras.utils.PyDataset) or not spe:
            print("[cinn] warning: this data cannot skip batches, so the interrupted epoch "
                  "restarts from its first batch", file=sys.stderr)
        else:
            counter.batch_offset = offset
            histories.append(model.fit(_Offset(data, offset, spe - offset),
                                       validation_data=validation_data,
                                       epochs=epochs, initial_epoch=start_epoch,
                                       callbacks=cbs + [_StopAfterEpoch()], verbose=verbose,
                                       shuffle=False))
            start_epoch += 1
    if start_epoch < epochs:
        _set_epoch(data, start_epoch)
        histories.append(model.fit(data, validation_data=validation_data, epochs=epochs,
                                   initial_epoch=start_epoch, callbacks=cbs, verbose=verbose,
                                   shuffle=False, steps_per_epoch=steps_per_epoch))
    if out_dir is not None:
        _note(f"finished at step {counter.step}", True)
    return _history(histories, model)


def _warm_start(model, init, initial_step, spe, epochs):
    """Load ``init``'s weights into ``model``; the (epoch, batch) of ``initial_step``."""
    initial_step = int(initial_step)
    if initial_step < 0:
        raise ValueError(f"the initial step must be >= 0, got {initial_step}")
    if initial_step and not spe:
        raise ValueError("a warm start at a step > 0 needs a known number of steps per epoch")
    total = epochs * spe if spe else None
    if total is not None and initial_step >= total:
        raise ValueError(f"the initial step {initial_step} is not before the end of the run "
                         f"({epochs} epochs x {spe} steps = {total}); raise the epochs")
    copy_weights(init, model)
    start_epoch, offset = divmod(initial_step, spe) if spe else (0, 0)
    _note(f"warm start from {init if isinstance(init, (str, Path)) else 'a model'}: "
          f"fresh optimizer, schedule from step {initial_step}"
          + (f" of {total} (epoch {start_epoch + 1}, batch {offset})" if total else ""), True)
    return start_epoch, offset


def copy_weights(source, model):
    """Copy every weight of ``source`` (a model, or a ``.keras`` file of one, loaded
    with ``cinn.load_model``) into ``model``, which must have the same architecture:
    the same number of weights with the same shapes, else ``CinnError``."""
    from cinn.errors import CinnError
    from cinn.saving import load_model

    name = "the source model"
    if isinstance(source, (str, Path)):
        name = str(source)
        if not Path(source).is_file():
            raise CinnError(f"{name}: no such model file")
        try:
            source = load_model(source)
        except Exception as err:  # noqa: BLE001 - any load failure becomes one line
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CinnError(f"{name}: could not load a model ({msg})") from None
    mine, theirs = model.weights, source.weights
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if tuple(a.shape) != tuple(b.shape):
            raise CinnError(f"{name}: architecture does not match the model to train "
                            f"(weight {i}, {a.path}: {tuple(a.shape)} here, "
                            f"{b.path}: {tuple(b.shape)} in the file)")
    if len(mine) != len(theirs):
        raise CinnError(f"{name}: architecture does not match the model to train "
                        f"({len(mine):,} weight tensors, {model.count_params():,} parameters "
                        f"here; {len(theirs):,} and {source.count_params():,} in the file)")
    for a, b in zip(mine, theirs):
        a.assign(keras.ops.convert_to_numpy(b))


def resolve_jit_compile(jit_compile="auto"):
    """Whether ``model.fit`` compiles the training step with XLA.

    ``"auto"``: on JAX always (XLA is how JAX runs); on TensorFlow only with a
    GPU and no ``tf.distribute`` strategy (Keras does not support XLA under
    one). On a CPU-only TensorFlow the step runs as a graph of oneDNN kernels,
    which trains the three apps 1.6-1.9x faster than the XLA-compiled step on
    the 2-core CPU: XLA's CPU convolutions are far slower than oneDNN's at these
    sizes (``python -m benchmarks.bench``, README, Speed).
    """
    if jit_compile != "auto":
        return bool(jit_compile)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU")) and not tf.distribute.has_strategy()
    return keras.backend.backend() == "jax"


def cosine_lr(epoch, epochs, learning_rate, min_lr_ratio=0.05):
    """Learning rate of ``epoch`` (0-based) of ``epochs`` on a half-cosine decay."""
    t = min(max(epoch / max(epochs - 1, 1), 0.0), 1.0)
    decay = 0.5 * (1 + math.cos(math.pi * t))
    return float(learning_rate * (min_lr_ratio + (1 - min_lr_ratio) * decay))


def _history(histories, model):
    if len(histories) == 1:
        return histories[0]
    h = keras.callbacks.History()
    h.set_model(model)
    h.epoch, h.history = [], {}
    for part in histories:
        h.epoch += list(part.epoch)
        for k, v in part.history.items():
            h.history.setdefault(k, []).extend(v)
    return h


def _default_conditions(data, model, n=4):
    """The first ``n`` conditions of ``data`` for sample grids (image models only)."""
    if not getattr(model, "image", False) or model.cond_shape is None:
        return None
    try:
        _, c = first_batch(data)
    except Exception:  # noqa: BLE001 - no grid rather than no training
        return None
    return None if c is None else np.asarray(keras.ops.convert_to_numpy(c))[:n]
