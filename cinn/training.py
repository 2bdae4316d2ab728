"""Maximum-likelihood training of a ``ConditionalINN`` with ``model.fit``."""
from pathlib import Path

import keras

from cinn.callbacks import NaNGuard, SaveModel


def first_batch(data):
    """``(x, c)`` of the first batch of a PyDataset, a ``(x, c)`` tuple of arrays or
    an iterable yielding ``((x, c),)``."""
    if isinstance(data, keras.utils.PyDataset):
        batch = data[0]
    elif isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        return data[0][:256], data[1][:256]
    else:
        batch = next(iter(data))
    inputs = batch[0] if isinstance(batch, tuple) and len(batch) == 1 else batch
    return inputs[0], inputs[1]


def train(model, data, validation_data=None, epochs=1, learning_rate=1e-3, clipnorm=None,
          out_dir=None, checkpoint_every=None, callbacks=(), verbose="auto", steps_per_epoch=None):
    """Train by exact maximum likelihood (the loss is bits per dimension).

    * ActNorm layers are initialised from the first batch unless already done.
    * With ``out_dir``: a resumable backup every ``checkpoint_every`` steps and at
      every epoch end (a run killed and started again with the same arguments
      continues where it stopped), and ``out_dir/model.keras`` after every epoch.
    * A NaN or infinite loss stops training with a ``TrainingDiverged`` error
      naming the step; the last good checkpoint stays intact.

    Returns the Keras ``History``.
    """
    if not model.is_initialized:
        model.initialize(*first_batch(data))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm))
    cbs = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cbs.append(NaNGuard(checkpoint_hint=str(out)))
        cbs.append(keras.callbacks.BackupAndRestore(
            str(out / "backup"), save_freq=checkpoint_every or "epoch", delete_checkpoint=False))
        cbs.append(SaveModel(out / "model.keras"))
    else:
        cbs.append(NaNGuard())
    cbs += list(callbacks)
    return model.fit(data, validation_data=validation_data, epochs=epochs, callbacks=cbs,
                     verbose=verbose, steps_per_epoch=steps_per_epoch)
