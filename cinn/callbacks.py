"""Training callbacks: stop on a non-finite loss, save models atomically."""
import math
import os
from pathlib import Path

import keras
import numpy as np

from cinn.errors import CinnError


class TrainingDiverged(CinnError):
    """The loss became NaN or infinite."""


def weights_are_finite(model):
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights
               if "float" in str(w.dtype))


class NaNGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite loss with a message naming the step.

    Put it before any checkpointing callback: it raises before they can save
    the broken weights, so the last good checkpoint stays intact.
    """

    def __init__(self, checkpoint_hint=None):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint
        self._epoch = 0
        self._steps_per_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            where = f"epoch {self._epoch + 1}, step {batch + 1}"
            hint = f"; the last good checkpoint is kept in {self.checkpoint_hint}" \
                if self.checkpoint_hint else ""
            raise TrainingDiverged(f"non-finite loss ({loss}) at {where}{hint}")


class SaveModel(keras.callbacks.Callback):
    """Save the whole model (``.keras``) at every epoch end, atomically (write a
    temporary file, then rename), and only when all weights are finite."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        if not weights_are_finite(self.model):
            return
        save_atomic(self.model, self.path)


def save_atomic(model, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if path.suffix == ".keras":
        model.save(tmp)
    else:
        model.save_weights(tmp)
    os.replace(tmp, path)
    return path
