"""What the apps' deterministic L2 baselines share (``cinn.apps.colorization.regressor``,
``cinn.apps.inpainting.regressor``): the part of the ``ConditionalINN`` interface that the
training loop, the sampling commands and the evaluations use, for a model with one
prediction per condition.

A subclass defines ``prediction(c)`` (the prediction, shaped like x), ``multiple``,
``cond_shape``, ``compute_loss`` and ``get_config``; ``build`` runs one prediction on
zeros, ``sample`` and ``sample_chunks`` return the prediction ``n`` times
(temperature and seed are ignored), ``call((x, c))`` returns it for the loss, and
``from_config`` rebuilds the ``cond_net`` it is given.
"""
import keras
from keras import ops


class Regressor(keras.Model):
    """Base of a deterministic model with a ``cond_net`` (see the module docstring)."""

    image = True

    @property
    def is_initialized(self):  # nothing data-dependent (the training loop asks)
        return True

    def prediction(self, c):  # the prediction for condition c, shaped like x (subclasses)
        raise NotImplementedError

    def build(self, input_shape=None):
        if self.built:
            return
        self.prediction(ops.zeros((1, self.multiple, self.multiple, self.cond_shape[-1])))
        self.built = True

    def call(self, inputs, training=False):
        _, c = inputs
        return self.prediction(c)

    def sample(self, c, n=1, temperature=None, seed=None, batch_size=None, **_):
        """The prediction ``n`` times: shape (B, n, ...) (a deterministic model)."""
        return ops.repeat(self.prediction(c)[:, None], int(n), axis=1)

    def sample_chunks(self, c, n=1, temperature=None, seed=None, batch_size=None, **_):
        """``sample`` as chunks of at most ``batch_size`` rows, row ``b * n + i`` being
        condition ``b``'s prediction (the flow's interface)."""
        rows = ops.repeat(self.prediction(c), int(n), axis=0)
        total = int(ops.shape(rows)[0])
        step = int(batch_size) if batch_size else total
        for i in range(0, total, step):
            yield rows[i:i + step]

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cond_net"] = keras.saving.deserialize_keras_object(config["cond_net"])
        return cls(**config)
