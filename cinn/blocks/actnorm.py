"""ActNorm (Glow): a per-channel affine map, initialised from the first batch."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, num_positions


@keras.saving.register_keras_serializable(package="cinn")
class ActNorm(InvertibleLayer):
    """``y = (x + loc) * exp(log_scale)`` per channel.

    Data-dependent initialisation: while ``init_from_data`` is on (the model's
    ``initialize`` turns it on for one eager pass), the first forward call sets
    ``loc`` and ``log_scale`` so that the output has zero mean and unit variance
    per channel on that batch. ``initialized`` is a saved weight, so a loaded
    model is never re-initialised.
    """

    def __init__(self, min_std=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.min_std = float(min_std)
        self.init_from_data = False

    def build(self, x_shape, c_shape=None):
        ch = x_shape[-1]
        self.loc = self.add_weight(shape=(ch,), initializer="zeros", name="loc")
        self.log_scale = self.add_weight(shape=(ch,), initializer="zeros", name="log_scale")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="initialized")
        super().build(x_shape, c_shape)

    def _data_init(self, x):
        axes = tuple(range(len(x.shape) - 1))
        mean = ops.mean(x, axis=axes)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=axes))
        self.loc.assign(-mean)
        self.log_scale.assign(-ops.log(ops.maximum(std, self.min_std)))
        self.initialized.assign(1.0)

    def _forward(self, x, c):
        if self.init_from_data and float(ops.convert_to_numpy(self.initialized)) == 0.0:
            self._data_init(x)
        y = (x + self.loc) * ops.exp(self.log_scale)
        log_det = num_positions(x) * ops.sum(self.log_scale)
        return y, ops.broadcast_to(log_det, (ops.shape(x)[0],))

    def _inverse(self, y, c):
        x = y * ops.exp(-self.log_scale) - self.loc
        log_det = -num_positions(y) * ops.sum(self.log_scale)
        return x, ops.broadcast_to(log_det, (ops.shape(y)[0],))

    def get_config(self):
        return {**super().get_config(), "min_std": self.min_std}
