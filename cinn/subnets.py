"""Subnetworks that predict the scale and shift of affine blocks.

A *trunk* (``ConvSubnet`` for images, ``DenseSubnet`` for vectors) maps the
block's input features to hidden features; ``AffineParams`` appends a
zero-initialised projection to ``(log_scale, shift)`` so every new affine block
starts as the identity map, and soft-clamps the log-scale.

Mixed precision: a trunk spec with ``"dtype": "mixed_bfloat16"`` (or
``"mixed_float16"``) runs the trunk's convolutions in half precision with
float32 weights, while the projection, the clamp and all flow arithmetic stay
float32. Invertibility is not affected: the inverse recomputes ``(s, t)`` from
the same unchanged half of the input with the same arithmetic, and the
log-determinant is exactly ``sum(s)`` of the ``s`` applied.
"""
import keras
from keras import ops

from cinn.blocks.base import soft_clamp

register = keras.saving.register_keras_serializable(package="cinn")


@register
class ConvSubnet(keras.layers.Layer):
    """``depth`` convolutions of ``hidden`` filters with ReLU (the first ``kernel_size``,
    the rest 1x1, as in Glow), 'same' padding."""

    def __init__(self, hidden=64, depth=2, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.depth, self.kernel_size = int(hidden), int(depth), int(kernel_size)
        self.convs = [
            keras.layers.Conv2D(
                self.hidden,
                self.kernel_size if i == 0 else 1,
                padding="same",
                activation="relu",
                name=f"conv{i}",
                dtype=self.dtype_policy,
            )
            for i in range(self.depth)
        ]

    def call(self, h):
        for conv in self.convs:
            h = conv(h)
        return h

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "depth": self.depth,
                "kernel_size": self.kernel_size}


@register
class DenseSubnet(keras.layers.Layer):
    """``depth`` dense layers of ``hidden`` units with ReLU."""

    def __init__(self, hidden=64, depth=2, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.depth = int(hidden), int(depth)
        self.denses = [
            keras.layers.Dense(self.hidden, activation="relu", name=f"dense{i}",
                               dtype=self.dtype_policy)
            for i in range(self.depth)
        ]

    def call(self, h):
        for dense in self.denses:
            h = dense(h)
        return h

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "depth": self.depth}


_TRUNKS = {"conv": ConvSubnet, "dense": DenseSubnet}


def make_subnet(spec, rank, name=None):
    """Build a trunk from a spec.

    ``spec`` is a layer, ``None`` (conv for images, dense for vectors, 64 wide),
    a spec dict ``{"type": "conv"|"dense", **kwargs}`` or a serialized layer.
    """
    if isinstance(spec, keras.layers.Layer):
        return spec
    spec = dict(spec or {})
    if "class_name" in spec:
        return keras.saving.deserialize_keras_object(spec)
    kind = spec.pop("type", "conv" if rank == 4 else "dense")
    if kind not in _TRUNKS:
        raise ValueError(f"unknown subnet type {kind!r}; expected one of {sorted(_TRUNKS)}")
    return _TRUNKS[kind](name=name, **spec)


def subnet_config(spec):
    """The JSON-able form of a subnet argument (for ``get_config``)."""
    if isinstance(spec, keras.layers.Layer):
        return keras.saving.serialize_keras_object(spec)
    return None if spec is None else dict(spec)


@register
class AffineParams(keras.layers.Layer):
    """Trunk + zero-initialised projection -> ``(log_scale, shift)``.

    The log-scale is soft-clamped to ``(-clamp, clamp)``. Output channels are
    ``channels`` each; for images the projection is a 3x3 conv, for vectors dense.
    """

    def __init__(self, channels, subnet=None, clamp=2.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.clamp = float(clamp)
        self._subnet_arg = subnet
        self.trunk = None
        self.proj = None

    def build(self, input_shape):
        rank = len(input_shape)
        self.trunk = make_subnet(self._subnet_arg, rank, name="trunk")
        if rank == 4:
            self.proj = keras.layers.Conv2D(
                2 * self.channels, 3, padding="same", kernel_initializer="zeros",
                bias_initializer="zeros", name="proj")
        else:
            self.proj = keras.layers.Dense(
                2 * self.channels, kernel_initializer="zeros", bias_initializer="zeros",
                name="proj")
        self.built = True

    def call(self, h):
        # the trunk may compute in half precision (mixed policy); (s, t) in float32
        out = self.proj(ops.cast(self.trunk(h), self.compute_dtype))
        log_scale = soft_clamp(out[..., : self.channels], self.clamp)
        shift = out[..., self.channels:]
        return log_scale, shift

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "subnet": subnet_config(self._subnet_arg), "clamp": self.clamp}


def concat_condition(h, c):
    """``h`` with the condition features appended on the channel axis."""
    if c is None:
        return h
    return ops.concatenate([h, ops.cast(c, h.dtype)], axis=-1)
