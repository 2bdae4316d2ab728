"""Channel mixing: the invertible 1x1 convolution in LU form, and a fixed permutation."""
import keras
import numpy as np
from keras import ops

from cinn.blocks.base import InvertibleLayer, num_positions, zeros_per_sample
from cinn.precision import full_float32


def _channel_matmul(x, w):
    """Apply ``w`` (out, in) on the last axis: ``y[..., i] = sum_j w[i, j] x[..., j]``."""
    return ops.matmul(x, ops.transpose(w))


@keras.saving.register_keras_serializable(package="cinn")
class InvertibleConv1x1(InvertibleLayer):
    """Glow's invertible 1x1 convolution, ``W = P L (U + diag(sign * exp(log_s)))``.

    ``P`` is a fixed permutation, ``L`` unit lower triangular, ``U`` strictly
    upper triangular: ``log|det W| = sum(log_s)``, O(C) per step. Initialised
    from a random rotation. Works on any rank (vectors: an invertible linear map).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, x_shape, c_shape=None):
        import scipy.linalg

        ch = int(x_shape[-1])
        rng = np.random.default_rng(self.seed)
        q, _ = np.linalg.qr(rng.standard_normal((ch, ch)))
        p, lower, upper = scipy.linalg.lu(q)
        diag = np.diag(upper)
        const = keras.initializers.Constant
        self.perm = self.add_weight(shape=(ch, ch), initializer=const(p), trainable=False,
                                    name="perm")
        self.sign = self.add_weight(shape=(ch,), initializer=const(np.sign(diag)),
                                    trainable=False, name="sign")
        self.lower = self.add_weight(shape=(ch, ch), initializer=const(np.tril(lower, -1)),
                                     name="lower")
        self.upper = self.add_weight(shape=(ch, ch), initializer=const(np.triu(upper, 1)),
                                     name="upper")
        self.log_s = self.add_weight(shape=(ch,), initializer=const(np.log(np.abs(diag))),
                                     name="log_s")
        self._eye = np.eye(ch, dtype="float32")
        self._lmask = np.tril(np.ones((ch, ch), "float32"), -1)
        super().build(x_shape, c_shape)

    def weight_matrix(self):
        lower = self.lower * self._lmask + self._eye
        upper = self.upper * self._lmask.T + ops.diag(self.sign * ops.exp(self.log_s))
        return ops.matmul(self.perm, ops.matmul(lower, upper))

    def _log_det(self, x):
        return ops.broadcast_to(num_positions(x) * ops.sum(self.log_s), (ops.shape(x)[0],))

    def _forward(self, x, c):
        with full_float32():  # x itself goes through these products: no TF32 on GPUs
            y = _channel_matmul(x, ops.cast(self.weight_matrix(), x.dtype))
        return y, self._log_det(x)

    def _inverse(self, y, c):
        with full_float32():
            w_inv = ops.inv(self.weight_matrix())
            x = _channel_matmul(y, ops.cast(w_inv, y.dtype))
        return x, -self._log_det(y)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="cinn")
class RandomPermutation(InvertibleLayer):
    """A fixed random permutation of the channels (log-det 0), saved with the weights."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, x_shape, c_shape=None):
        ch = int(x_shape[-1])
        perm = np.random.default_rng(self.seed).permutation(ch)
        const = keras.initializers.Constant
        self.perm = self.add_weight(shape=(ch,), initializer=const(perm), dtype="int32",
                                    trainable=False, name="perm")
        self.inv_perm = self.add_weight(shape=(ch,), initializer=const(np.argsort(perm)),
                                        dtype="int32", trainable=False, name="inv_perm")
        super().build(x_shape, c_shape)

    def _forward(self, x, c):
        return ops.take(x, self.perm, axis=-1), zeros_per_sample(x)

    def _inverse(self, y, c):
        return ops.take(y, self.inv_perm, axis=-1), zeros_per_sample(y)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
