"""Masked autoregressive flows for vectors: MAF (Papamakarios, Pavlakou & Murray 2017,
"Masked Autoregressive Flow for Density Estimation") and IAF (Kingma et al. 2016,
"Improved Variational Inference with Inverse Autoregressive Flow"), with a MADE
conditioner (Germain, Gregor, Murray & Larochelle 2015, "MADE: Masked Autoencoder
for Distribution Estimation")."""
import keras
import numpy as np
from keras import ops

from cinn.blocks.base import InvertibleLayer, soft_clamp, sum_except_batch
from cinn.blocks.spline import SplineConfig


def made_degrees(dims, hidden, depth, reverse=False, conditioned=False):
    """Degrees ``(inputs, [hidden layer 1, ...])`` of a MADE.

    Inputs get ``1..dims`` in order (``dims..1`` when ``reverse``); hidden units
    cycle through ``1..dims-1``. With a condition they cycle through ``0..dims-1``:
    units of degree 0 see the condition only, so that the parameters of the first
    dimension depend on the condition too.
    """
    inputs = np.arange(1, dims + 1)
    if reverse:
        inputs = inputs[::-1]
    low = 0 if conditioned or dims == 1 else 1
    layer = low + np.arange(hidden) % (dims - low)
    return inputs, [layer] * depth


@keras.saving.register_keras_serializable(package="cinn")
class MADE(keras.layers.Layer):
    """Masked dense network: ``params_per_dim`` outputs per input dimension ``i``
    (element-major: output ``i * params_per_dim + p``), each a function of the inputs
    of lower degree than ``i`` and of the condition only.

    The condition is an unmasked input of every hidden layer. ReLU hidden layers;
    the output layer is zero-initialised (every parameter starts at 0).
    """

    def __init__(self, dims, params_per_dim, hidden=64, depth=2, reverse=False, **kwargs):
        super().__init__(**kwargs)
        self.dims, self.params_per_dim = int(dims), int(params_per_dim)
        self.hidden, self.depth, self.reverse = int(hidden), int(depth), bool(reverse)
        if self.depth < 1 or self.hidden < 1:
            raise ValueError(f"MADE needs depth >= 1 and hidden >= 1, got {depth}, {hidden}")

    def build(self, x_shape, c_shape=None):
        degrees_in, degrees_hidden = made_degrees(self.dims, self.hidden, self.depth,
                                                  self.reverse, c_shape is not None)
        self.degrees_in = degrees_in
        self.masks, self.kernels, self.biases, self.cond_kernels = [], [], [], []
        previous = degrees_in
        for i, degrees in enumerate(degrees_hidden):
            self.masks.append((degrees[None, :] >= previous[:, None]).astype("float32"))
            self.kernels.append(self.add_weight(shape=(len(previous), self.hidden),
                                                initializer="glorot_uniform", name=f"kernel{i}"))
            self.biases.append(self.add_weight(shape=(self.hidden,), initializer="zeros",
                                               name=f"bias{i}"))
            if c_shape is not None:
                self.cond_kernels.append(self.add_weight(
                    shape=(c_shape[-1], self.hidden), initializer="glorot_uniform",
                    name=f"cond_kernel{i}"))
            previous = degrees
        degrees_out = np.repeat(degrees_in, self.params_per_dim)
        self.masks.append((degrees_out[None, :] > previous[:, None]).astype("float32"))
        self.out_kernel = self.add_weight(shape=(self.hidden, len(degrees_out)),
                                          initializer="zeros", name="out_kernel")
        self.out_bias = self.add_weight(shape=(len(degrees_out),), initializer="zeros",
                                        name="out_bias")
        self.built = True

    def call(self, x, c=None):
        h = x
        for i in range(self.depth):
            h = ops.matmul(h, self.kernels[i] * self.masks[i]) + self.biases[i]
            if c is not None:
                h = h + ops.matmul(ops.cast(c, h.dtype), self.cond_kernels[i])
            h = ops.relu(h)
        out = ops.matmul(h, self.out_kernel * self.masks[-1]) + self.out_bias
        return ops.reshape(out, (-1, self.dims, self.params_per_dim))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims, "params_per_dim": self.params_per_dim,
                "hidden": self.hidden, "depth": self.depth, "reverse": self.reverse}


@keras.saving.register_keras_serializable(package="cinn")
class MaskedAutoregressiveFlow(SplineConfig, InvertibleLayer):
    """An autoregressive bijection of vectors ``(batch, D)``:
    ``y_i = f(x_i; theta_i(x_<i, c))`` with ``theta = MADE(x, c)`` (MAF), the order
    ``1..D`` or, with ``reverse``, ``D..1`` (alternate it between stacked blocks).

    ``transform="affine"``: ``y_i = x_i * exp(s_i) + t_i``, ``s_i`` soft-clamped to
    ``(-clamp, clamp)``; ``transform="spline"``: a rational-quadratic spline of
    ``bins`` bins on ``[-bound, bound]`` (Durkan et al. 2019, ``cinn.blocks.spline``).

    MAF: the forward map (``x -> y``, density evaluation) is one MADE pass; the
    inverse (sampling) is sequential, ``D`` passes. ``inverse_autoregressive=True``
    (IAF) is the same layer the other way round: ``theta_i`` depends on ``y_<i``, so
    the forward map is sequential and the inverse one pass. log-det: the sum of
    the elementwise log-derivatives. Zero-initialised output layer: a new block is
    the identity.
    """

    uses_condition = True
    TRANSFORMS = ("affine", "spline")

    def __init__(self, hidden=64, depth=2, clamp=2.0, transform="affine", reverse=False,
                 inverse_autoregressive=False, bins=8, bound=3.0, min_bin_width=1e-3,
                 min_bin_height=1e-3, min_derivative=1e-3, **kwargs):
        super().__init__(**kwargs)
        if transform not in self.TRANSFORMS:
            raise ValueError(f"transform must be one of {self.TRANSFORMS}, got {transform!r}")
        self.hidden, self.depth, self.clamp = int(hidden), int(depth), float(clamp)
        self.transform, self.reverse = transform, bool(reverse)
        self.inverse_autoregressive = bool(inverse_autoregressive)
        self._init_spline(bins, bound, min_bin_width, min_bin_height, min_derivative)
        self.made = None

    def build(self, x_shape, c_shape=None):
        if len(x_shape) != 2 or x_shape[-1] is None:
            raise ValueError(f"{self.name}: an autoregressive flow works on vectors of known "
                             f"size, shape (batch, D), got {tuple(x_shape)}")
        if c_shape is not None and len(c_shape) != 2:
            raise ValueError(f"{self.name}: condition must be a vector batch "
                             f"(expected shape (batch, C)), got {tuple(c_shape)}")
        per_dim = 2 if self.transform == "affine" else 3 * self.bins - 1
        self.made = MADE(x_shape[-1], per_dim, self.hidden, self.depth, self.reverse,
                         name="made")
        super().build(x_shape, c_shape)

    def _elementwise(self, v, params, inverse):
        """``v -> (f(v), log|f'(v)|)`` (``f^-1`` when ``inverse``), elementwise."""
        params = ops.cast(params, v.dtype)
        if self.transform == "spline":
            return self.spline(v, params, inverse)
        s, t = soft_clamp(params[..., 0], self.clamp), params[..., 1]
        if inverse:
            return (v - t) * ops.exp(-s), -s
        return v * ops.exp(s) + t, s

    def _one_pass(self, v, c, inverse):
        """The direction in which every parameter is a function of ``v``: one pass."""
        out, log_det = self._elementwise(v, self.made(v, c), inverse)
        return out, sum_except_batch(log_det)

    def _sequential(self, v, c, inverse):
        """The other direction: the parameters are functions of the output, known one
        degree more after each pass, all of it after ``D`` passes."""
        out = ops.zeros_like(v)
        for _ in range(v.shape[-1]):
            out, log_det = self._elementwise(v, self.made(out, c), inverse)
        return out, sum_except_batch(log_det)

    def _forward(self, x, c):
        if self.inverse_autoregressive:
            return self._sequential(x, c, inverse=False)
        return self._one_pass(x, c, inverse=False)

    def _inverse(self, y, c):
        if self.inverse_autoregressive:
            return self._one_pass(y, c, inverse=True)
        return self._sequential(y, c, inverse=True)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "depth": self.depth,
                "clamp": self.clamp, "transform": self.transform, "reverse": self.reverse,
                "inverse_autoregressive": self.inverse_autoregressive, **self.spline_config()}
