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

from cinn.blocks.base import soft_clamp, split_channels

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


def check_subnet(spec):
    """The subnet argument of a block in its stored form, or a ``ValueError``.

    Accepted: ``None`` (conv for images, dense for vectors, 64 wide), a spec dict
    ``{"type": "conv"|"dense", **kwargs}``, a serialized layer (a dict with
    ``"class_name"``: every block builds its own copy), or a factory
    ``make(c_in, c_out) -> Layer`` (FrEIA's ``subnet_constructor``): a function or
    class registered with ``keras.saving.register_keras_serializable``, stored as
    ``{"factory": "<registered name>"}`` so that ``.keras`` files round-trip. Each
    block calls it once for a trunk of its own.

    Not accepted: a ``Layer`` instance. Every block of a level would share that
    one layer (and its weights), and after a ``.keras`` reload each block would
    get a separate copy, so the reloaded model would not be the saved one.
    """
    if spec is None:
        return None
    if isinstance(spec, keras.layers.Layer):
        raise ValueError(
            f"a subnet must not be a Layer instance ({type(spec).__name__}): every block "
            "would share it, and a .keras reload would give each block its own copy. Pass "
            'a spec dict such as {"type": "conv", "hidden": 64} or a registered factory '
            "make(c_in, c_out) -> Layer (keras.saving.register_keras_serializable)")
    if callable(spec):
        name = keras.saving.get_registered_name(spec)
        if keras.saving.get_registered_object(name) is not spec and getattr(
                spec, "__name__", "") == "<lambda>":
            raise ValueError(
                "the subnet constructor is an unregistered lambda, which a saved model "
                "cannot find again: register it under a name, make = keras.saving."
                "register_keras_serializable(package=\"my_package\", name=\"make\")"
                "(lambda c_in, c_out: ...), and pass make (or decorate a def make(c_in, "
                "c_out) with @keras.saving.register_keras_serializable(package="
                "\"my_package\")); run that code before loading the saved model")
        if keras.saving.get_registered_object(name) is not spec:
            raise ValueError(
                f"the subnet factory {getattr(spec, '__qualname__', spec)!r} is not "
                "registered: decorate it with "
                "@keras.saving.register_keras_serializable(package=...) so that saved "
                "models can rebuild their subnets")
        return {"factory": name}
    if not isinstance(spec, dict):
        raise ValueError(f"a subnet must be None, a spec dict or a registered factory "
                         f"make(c_in, c_out), got {type(spec).__name__}")
    spec = dict(spec)
    if "factory" in spec:
        if set(spec) != {"factory"}:
            raise ValueError(f"a factory subnet spec has the one key 'factory', got {spec}")
        if keras.saving.get_registered_object(spec["factory"]) is None:
            raise ValueError(f"unknown subnet factory {spec['factory']!r}: import the "
                             "module that registers it before building or loading")
    elif "class_name" not in spec:
        kind = spec.get("type", "conv")
        if kind not in _TRUNKS:
            raise ValueError(f"unknown subnet type {kind!r}; expected one of {sorted(_TRUNKS)}")
    return spec


def make_subnet(spec, rank, c_in, c_out, name=None):
    """A new trunk for one block from a subnet argument (see ``check_subnet``).

    ``c_in``: channels of the trunk's input (the block's features and condition),
    ``c_out``: what the block needs from ``AffineParams`` (log-scales and shifts),
    passed on to a factory ``make(c_in, c_out)``; the zero-initialised projection
    after the trunk maps whatever the trunk returns to ``c_out`` channels.
    """
    spec = check_subnet(spec) or {}
    if "factory" in spec:
        layer = keras.saving.get_registered_object(spec["factory"])(c_in, c_out)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"the subnet factory {spec['factory']!r} must return a Layer, "
                             f"got {type(layer).__name__}")
        return layer
    if "class_name" in spec:
        return keras.saving.deserialize_keras_object(spec)
    kind = spec.pop("type", "conv" if rank == 4 else "dense")
    return _TRUNKS[kind](name=name, **spec)


def subnet_config(spec):
    """The JSON-able form of a subnet argument (for ``get_config``)."""
    return check_subnet(spec)


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
        self._subnet_arg = check_subnet(subnet)
        self.trunk = None
        self.proj = None

    def build(self, input_shape):
        rank = len(input_shape)
        self.trunk = make_subnet(self._subnet_arg, rank, input_shape[-1], 2 * self.channels,
                                 name="trunk")
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
        log_scale, shift = split_channels(out, self.channels)
        return soft_clamp(log_scale, self.clamp), shift

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "subnet": subnet_config(self._subnet_arg), "clamp": self.clamp}


def concat_condition(h, c):
    """``h`` with the condition features appended on the channel axis."""
    if c is None:
        return h
    return ops.concatenate([h, ops.cast(c, h.dtype)], axis=-1)


@register
class SubnetParams(keras.layers.Layer):
    """Trunk + zero-initialised projection -> ``channels`` raw parameters.

    The general form of ``AffineParams`` for blocks that interpret the subnet's
    output themselves (additive shifts, spline bins, masked couplings): no
    clamp, no split. Zero-initialised, so every parameter is 0 in a new block.
    For images the projection is a 3x3 conv, for vectors dense.
    """

    def __init__(self, channels, subnet=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self._subnet_arg = check_subnet(subnet)
        self.trunk = None
        self.proj = None

    def build(self, input_shape):
        rank = len(input_shape)
        self.trunk = make_subnet(self._subnet_arg, rank, input_shape[-1], self.channels,
                                 name="trunk")
        if rank == 4:
            self.proj = keras.layers.Conv2D(
                self.channels, 3, padding="same", kernel_initializer="zeros",
                bias_initializer="zeros", name="proj")
        else:
            self.proj = keras.layers.Dense(
                self.channels, kernel_initializer="zeros", bias_initializer="zeros",
                name="proj")
        self.built = True

    def call(self, h):
        # the trunk may compute in half precision (mixed policy); the output in float32
        return self.proj(ops.cast(self.trunk(h), self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "subnet": subnet_config(self._subnet_arg)}
