"""The super-resolution cINN: ``p(details | LR)`` with an RRDB-style LR encoder.

The flow does not see HR pixels directly but the LR-consistent parametrisation
of ``cinn.apps.superres.consistent``: per LR pixel, the ``3*(s*s-1)`` block-Haar detail
coefficients of the residual over the bicubic upsampling (the coarse coefficient
is fixed by the LR image). So the data of the flow live on the LR grid:
``x_shape = (h, w, 3*(s*s-1))``, condition ``(h, w, 3)``.

Levels (SRFlow's structure on that grid): level 0 at the LR resolution (HR/s),
then squeeze levels at HR/2s, HR/4s, ...; each level: transition (ActNorm +
1x1 conv), ``blocks`` steps of [ActNorm, 1x1 conv, conditional affine injector,
conditional affine coupling], then a split with a learned conditional prior
(except the last level). The LR encoder (stem, residual dense blocks, all block
outputs concatenated as in SRFlow) gives features at every level's resolution.
"""
import keras
from keras import ops

from cinn import ConditionalINN
from cinn.conditioning import PyramidConditionNet
from cinn.apps.superres.consistent import check_base, detail_channels

register = keras.saving.register_keras_serializable(package="cinn_apps")

#: defaults of the ``model`` section of the config
DEFAULTS = {
    "scale": 4,             # 2, 4 or 8
    "base": "bicubic",      # the details' base image (consistent.base_lr): bicubic or consistent
    "levels": 2,            # flow levels on the LR grid (HR/s, then squeezed: HR/2s, ...)
    "blocks": 4,            # flow steps per level: ActNorm, 1x1 conv, injector, coupling
    "subnet": {"hidden": 64, "depth": 2},  # coupling / injector / prior subnets
    "cond_channels": 32,    # LR features fed to each level
    "cond_hidden": 32,      # LR encoder width
    "cond_blocks": 2,       # residual dense blocks of the LR encoder
    "cond_growth": 16,      # their growth rate
    "clamp": 2.0,
    "seed": 0,
}


def _lrelu(x):
    return ops.leaky_relu(x, 0.2)


@register
class ResidualDenseBlock(keras.layers.Layer):
    """ESRGAN's residual dense block, small: 3 densely connected convs, ``h + 0.2 * out``."""

    def __init__(self, width, growth=16, **kwargs):
        super().__init__(**kwargs)
        self.width, self.growth = int(width), int(growth)
        self.c1 = keras.layers.Conv2D(self.growth, 3, padding="same", name="c1")
        self.c2 = keras.layers.Conv2D(self.growth, 3, padding="same", name="c2")
        self.c3 = keras.layers.Conv2D(self.width, 3, padding="same", name="c3")

    def call(self, h):
        o1 = _lrelu(self.c1(h))
        o2 = _lrelu(self.c2(ops.concatenate([h, o1], axis=-1)))
        o3 = self.c3(ops.concatenate([h, o1, o2], axis=-1))
        return h + 0.2 * o3

    def get_config(self):
        return {**super().get_config(), "width": self.width, "growth": self.growth}


@register
class LREncoder(PyramidConditionNet):
    """LR image -> one feature map per flow level.

    ``scales``: per level, log2(level resolution / LR resolution), ``<= 0``.
    The outputs of the stem and of every residual dense block are concatenated
    (SRFlow's concatenated RRDB features) and fused by a 1x1 conv; stride-2
    convs make the coarser levels; each level has a 3x3 head.
    """

    def __init__(self, scales, channels=32, hidden=32, blocks=2, growth=16, **kwargs):
        super().__init__(**kwargs)
        self.scales = [int(s) for s in scales]
        if any(s > 0 for s in self.scales):
            raise ValueError("LREncoder scales must be <= 0")
        self.channels, self.hidden = int(channels), int(hidden)
        self.blocks, self.growth = int(blocks), int(growth)
        self.stem = keras.layers.Conv2D(self.hidden, 3, padding="same", name="stem")
        self.rdbs = [ResidualDenseBlock(self.hidden, self.growth, name=f"rdb{i}")
                     for i in range(self.blocks)]
        self.fuse = keras.layers.Conv2D(self.hidden, 1, name="fuse")
        self.down = [keras.layers.Conv2D(self.hidden, 3, strides=2, padding="same",
                                         name=f"down{i}")
                     for i in range(max([0] + [-s for s in self.scales]))]
        self.heads = [keras.layers.Conv2D(self.channels, 3, padding="same", name=f"head{i}")
                      for i in range(len(self.scales))]

    def call(self, c):
        h = self.stem(c)
        feats = [h]
        for block in self.rdbs:
            h = block(h)
            feats.append(h)
        g = _lrelu(self.fuse(ops.concatenate(feats, axis=-1)))
        pyramid = {0: g}
        for i, conv in enumerate(self.down):
            g = _lrelu(conv(g))
            pyramid[-(i + 1)] = g
        return [head(pyramid[s]) for s, head in zip(self.scales, self.heads)]

    def get_config(self):
        return {**super().get_config(), "scales": self.scales, "channels": self.channels,
                "hidden": self.hidden, "blocks": self.blocks, "growth": self.growth}


@register
class SuperResINN(ConditionalINN):
    """``ConditionalINN`` over the LR-consistent detail coefficients of an ``scale``x
    super-resolution; see ``cinn.apps.superres.consistent`` and ``cinn.apps.superres.infer``."""

    app = "superres"

    def __init__(self, scale=4, base="bicubic", **kwargs):
        self.scale = int(scale)
        self.base = check_base(base)  # the base image of the details (consistent.base_lr)
        super().__init__(**kwargs)

    @property
    def image_upscale(self):
        """The images' factor (``scale``); the flow runs on the LR grid (``upscale`` 1)."""
        return self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "base": self.base}


def build_model(cfg=None):
    """A ``SuperResINN`` from the ``model`` section of the config (see ``DEFAULTS``)."""
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown superres model option(s) {sorted(unknown)}; "
                         f"known: {sorted(DEFAULTS)}")
    scale = int(cfg["scale"])
    if scale not in (2, 4, 8):
        raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
    n_levels = int(cfg["levels"])
    subnet = {"type": "conv", **dict(cfg["subnet"])}
    levels = []
    for i in range(n_levels):
        levels.append({"downsample": None if i == 0 else "squeeze", "transition": True,
                       "blocks": int(cfg["blocks"]), "injector": True,
                       "subnet": subnet,
                       "split": "prior" if i < n_levels - 1 else None})
    encoder = LREncoder(scales=[-i for i in range(n_levels)],
                        channels=int(cfg["cond_channels"]),
                        hidden=int(cfg["cond_hidden"]),
                        blocks=int(cfg["cond_blocks"]),
                        growth=int(cfg["cond_growth"]), name="lr_encoder")
    return SuperResINN(scale=scale, base=cfg["base"],
                       x_shape=(None, None, detail_channels(scale)),
                       cond_shape=(None, None, 3), levels=levels, cond_net=encoder,
                       upscale=1, clamp=float(cfg["clamp"]), bin_width=1 / 255,
                       seed=int(cfg["seed"]), name=f"superres_x{scale}")
