"""Conditioning networks: condition -> one feature map per flow level."""
import keras
from keras import ops

register = keras.saving.register_keras_serializable(package="cinn")


def _upsample_axis(x, axis):
    """2x bilinear upsampling of NHWC ``x`` along ``axis`` (1 or 2), half-pixel
    centres, edges clamped: what ``tf.image.resize``/``jax.image.resize`` do."""
    n = ops.shape(x)[axis]
    first = x[:, :1] if axis == 1 else x[:, :, :1]
    last = x[:, n - 1:] if axis == 1 else x[:, :, n - 1:]
    body_prev = x[:, :n - 1] if axis == 1 else x[:, :, :n - 1]
    body_next = x[:, 1:] if axis == 1 else x[:, :, 1:]
    prev = ops.concatenate([first, body_prev], axis=axis)
    nxt = ops.concatenate([body_next, last], axis=axis)
    pair = ops.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=axis + 1)
    shape = [ops.shape(x)[i] for i in range(4)]
    shape[axis] = 2 * shape[axis]
    return ops.reshape(pair, tuple(shape))


def upsample_bilinear_2x(x):
    """``keras.layers.UpSampling2D(2, interpolation="bilinear")`` on NHWC ``x``,
    written so that it also traces with unknown height and width (SavedModel export)."""
    return _upsample_axis(_upsample_axis(x, 1), 2)


def space_to_depth(c):
    """(B, H, W, C) -> (B, H/2, W/2, 4C): a conditioning net then works at half
    resolution, 4x cheaper, losing nothing (a permutation of the pixels)."""
    b, h, w, ch = ops.shape(c)[0], ops.shape(c)[1], ops.shape(c)[2], ops.shape(c)[3]
    c = ops.reshape(c, (b, h // 2, 2, w // 2, 2, ch))
    c = ops.transpose(c, (0, 1, 3, 2, 4, 5))
    return ops.reshape(c, (b, h // 2, w // 2, 4 * ch))


def depth_to_space(h):
    """(B, H, W, 4C) -> (B, 2H, 2W, C), the inverse of ``space_to_depth``."""
    b, hh, ww, ch = ops.shape(h)[0], ops.shape(h)[1], ops.shape(h)[2], ops.shape(h)[3]
    h = ops.reshape(h, (b, hh, ww, 2, 2, ch // 4))
    h = ops.transpose(h, (0, 1, 3, 2, 4, 5))
    return ops.reshape(h, (b, 2 * hh, 2 * ww, ch // 4))


@register
class ResidualBlock(keras.layers.Layer):
    """``h + conv(relu(conv(h)))`` at constant width."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)
        self.conv1 = keras.layers.Conv2D(self.width, 3, padding="same", activation="relu",
                                         name="conv1", dtype=self.dtype_policy)
        self.conv2 = keras.layers.Conv2D(self.width, 3, padding="same", name="conv2",
                                         dtype=self.dtype_policy)

    def call(self, h):
        return h + self.conv2(self.conv1(h))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def per_level(scales, channels):
    """``(scales, channels)`` as lists with one entry per flow level (``channels``:
    an int for every level, or one per level)."""
    scales = [None if s is None else int(s) for s in scales]
    channels = ([int(channels)] * len(scales) if isinstance(channels, int)
                else [int(c) for c in channels])
    if len(channels) != len(scales):
        raise ValueError("channels must be an int or have one entry per level")
    return scales, channels


class PyramidConditionNet(keras.layers.Layer):
    """Base of conditioning networks that map a condition to one feature map per
    flow level and reach the coarser levels by the stride-2 convs in ``self.down``:
    ``build`` creates every sub-layer's weights by one pass on a small dummy
    condition (``2 ** len(self.down)`` pixels a side, so every stride applies)."""

    def build(self, c_shape):
        side = 2 ** max(1, len(self.down))
        self.call(ops.zeros((1, side, side, c_shape[-1])))
        self.built = True


@register
class ConditionNet(PyramidConditionNet):
    """A small conv pyramid that feeds every level of a multi-scale flow.

    Args:
        scales: one entry per flow level: log2 of (level resolution / condition
            resolution), e.g. ``[-1, -2, -3]`` for three Haar levels on a condition
            at the data's resolution, ``[1, 0, -1]`` for 4x super-resolution
            (HR/2, HR/4, HR/8 from an LR condition). ``None``: no features.
        channels: feature channels per level (int, or a list per level).
        hidden: width of the trunk.
        trunk_blocks: residual blocks at the condition's resolution.

    Features below the condition's resolution come from stride-2 convolutions,
    above it from bilinear upsampling + convolution; each level has its own head.
    """

    def __init__(self, scales, channels=32, hidden=64, trunk_blocks=2, **kwargs):
        super().__init__(**kwargs)
        self.scales, self.channels = per_level(scales, channels)
        self.hidden = int(hidden)
        self.trunk_blocks = int(trunk_blocks)
        used = [s for s in self.scales if s is not None]
        dt = self.dtype_policy  # a mixed policy reaches every convolution
        self.stem = keras.layers.Conv2D(self.hidden, 3, padding="same", activation="relu",
                                        name="stem", dtype=dt)
        self.trunk = [ResidualBlock(self.hidden, name=f"res{i}", dtype=dt)
                      for i in range(self.trunk_blocks)]
        self.down = [keras.layers.Conv2D(self.hidden, 3, strides=2, padding="same",
                                         activation="relu", name=f"down{i}", dtype=dt)
                     for i in range(max([0] + [-s for s in used]))]
        self.up = [keras.layers.Conv2D(self.hidden, 3, padding="same", activation="relu",
                                       name=f"up{i}", dtype=dt) for i in range(max([0] + used))]
        self.heads = [None if s is None else
                      keras.layers.Conv2D(ch, 3, padding="same", name=f"head{i}", dtype=dt)
                      for i, (s, ch) in enumerate(zip(self.scales, self.channels))]

    def call(self, c):
        h = self.stem(c)
        for block in self.trunk:
            h = block(h)
        pyramid = {0: h}
        g = h
        for i, conv in enumerate(self.down):
            g = conv(g)
            pyramid[-(i + 1)] = g
        g = h
        for i, conv in enumerate(self.up):
            g = conv(upsample_bilinear_2x(g))
            pyramid[i + 1] = g
        return [None if head is None else head(pyramid[s])
                for s, head in zip(self.scales, self.heads)]

    def get_config(self):
        return {**super().get_config(), "scales": self.scales, "channels": self.channels,
                "hidden": self.hidden, "trunk_blocks": self.trunk_blocks}


@register
class UNetConditionNet(PyramidConditionNet):
    """An encoder-decoder (U-Net) conditioning network whose features see the whole
    input: for flows that need global context (colorization: sky, skin or foliage
    is decided by what surrounds a pixel, not by its 20-pixel neighbourhood).

    Encoder: a stem and ``blocks`` residual blocks at the condition's resolution,
    then per depth ``d = 1 .. len(widths) - 1`` a stride-2 convolution to
    ``widths[d]`` channels and ``blocks`` residual blocks (depth ``d`` is at
    ``2**-d`` of the condition's resolution). With ``global_context`` the
    bottleneck gets the mean of its own features over the whole image (a dense
    layer of it, added at every position), so every feature depends on every
    input pixel at any image size (as in Iizuka et al. 2016). Decoder: from the
    bottleneck up to the finest depth a level needs, bilinear 2x upsampling,
    concatenation with the encoder's features of that depth (the skip) and a
    3x3 convolution. Each flow level gets a 3x3 head on the decoder's features
    at its depth.

    Args:
        scales: one entry per flow level, log2 of (level resolution / condition
            resolution), each ``<= 0`` and ``> -len(widths)``; ``None``: no features.
        channels: feature channels per level (int, or a list per level).
        widths: trunk width at each depth (its length - 1 is the number of
            downsamplings).
        blocks: residual blocks at each depth of the encoder.
        global_context: add the global mean of the bottleneck (see above).

    Inputs whose size is not a multiple of ``2 ** (len(widths) - 1)`` work: the
    strided convolutions round up and the decoder crops to the skip's size.
    """

    def __init__(self, scales, channels=32, widths=(32, 48, 64, 96), blocks=1,
                 global_context=True, **kwargs):
        super().__init__(**kwargs)
        self.scales, self.channels = per_level(scales, channels)
        self.widths = [int(w) for w in widths]
        self.blocks = int(blocks)
        self.global_context = bool(global_context)
        depth = len(self.widths) - 1
        used = [-s for s in self.scales if s is not None]
        if any(d < 0 or d > depth for d in used):
            raise ValueError(f"UNetConditionNet: scales must lie in [-{depth}, 0] for "
                             f"{depth + 1} widths, got {self.scales}")
        self.finest = min(used) if used else depth
        dt = self.dtype_policy
        conv = keras.layers.Conv2D
        self.stem = conv(self.widths[0], 3, padding="same", activation="relu", name="stem",
                         dtype=dt)
        self.down = [conv(w, 3, strides=2, padding="same", activation="relu", name=f"down{d}",
                          dtype=dt) for d, w in enumerate(self.widths[1:], start=1)]
        self.enc = [[ResidualBlock(w, name=f"enc{d}_res{i}", dtype=dt)
                     for i in range(self.blocks)] for d, w in enumerate(self.widths)]
        self.context = (keras.layers.Dense(self.widths[-1], activation="relu", name="context",
                                           dtype=dt) if self.global_context else None)
        self.dec = [None if d < self.finest else
                    conv(self.widths[d], 3, padding="same", activation="relu", name=f"dec{d}",
                         dtype=dt) for d in range(depth)]
        self.heads = [None if s is None else
                      conv(ch, 3, padding="same", name=f"head{i}", dtype=dt)
                      for i, (s, ch) in enumerate(zip(self.scales, self.channels))]

    def call(self, c):
        h = self.stem(c)
        skips = []
        for d, blocks in enumerate(self.enc):
            if d:
                h = self.down[d - 1](h)
            for block in blocks:
                h = block(h)
            skips.append(h)
        if self.context is not None:
            g = self.context(ops.mean(h, axis=(1, 2)))
            h = h + g[:, None, None, :]
        feats = {len(skips) - 1: h}
        for d in range(len(skips) - 2, self.finest - 1, -1):
            skip = skips[d]
            up = upsample_bilinear_2x(h)[:, :ops.shape(skip)[1], :ops.shape(skip)[2]]
            h = self.dec[d](ops.concatenate([up, skip], axis=-1))
            feats[d] = h
        return [None if head is None else head(feats[-s])
                for s, head in zip(self.scales, self.heads)]

    def get_config(self):
        return {**super().get_config(), "scales": self.scales, "channels": self.channels,
                "widths": self.widths, "blocks": self.blocks,
                "global_context": self.global_context}
