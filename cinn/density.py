"""Image density estimation with ``ConditionalINN``: the Glow and RealNVP
configurations, uniform dequantisation and bits per dimension as the literature
counts them.

The convention (Theis et al. 2016; RealNVP, Glow, FFJORD tables): 8-bit pixels
``k in {0..255}`` are dequantised to ``x = (k + u) / 256``, ``u ~ U[0, 1)``, so
``x in [0, 1)``; a flow with continuous density ``p`` on ``x`` gives, per image of
``D`` values,

    bits/dim = (-log p(x) + D log 256) / (D log 2),

the negative log-likelihood of the pixels in ``[0, 256)`` space, per dimension, in
bits. Averaged over the test set with one noise draw per image it is an upper
bound of the discrete model's bits/dim (``-log P(k) <= E_u[-log p((k + u)/256)] +
D log 256``). ``ConditionalINN(bin_width=1/256)`` trains on exactly this loss: feed
it pixel centres ``(k + 0.5) / 256`` (``pixel_centres``) and it adds the noise
``U[-1/512, 1/512)`` itself.
"""
import math

import keras
import numpy as np
from keras import ops

from cinn.model import LOG_2PI, ConditionalINN

BINS = 256
LOG_2 = math.log(2.0)


def _nhwc(k):
    k = np.asarray(k)
    return k[..., None] if k.ndim == 3 else k


def pixel_centres(k):
    """8-bit images (N, H, W) or (N, H, W, C) -> float32 ``(k + 0.5) / 256`` NHWC:
    what a ``ConditionalINN(bin_width=1/256)`` is trained on."""
    return ((_nhwc(k).astype(np.float32) + 0.5) / BINS).astype(np.float32)


def dequantize(k, seed=0):
    """8-bit images -> float32 ``(k + u) / 256`` NHWC with ``u ~ U[0, 1)`` (NumPy,
    seeded): every value in ``[k / 256, (k + 1) / 256)``, so in ``[0, 1)``."""
    k = _nhwc(k)
    u = np.random.default_rng(seed).random(k.shape, dtype=np.float32)
    x = (k.astype(np.float32) + u) / BINS
    return np.minimum(x, np.nextafter(np.float32(1.0), np.float32(0.0))).astype(np.float32)


def bits_per_dim(nll_nats, dims, bins=BINS):
    """``(nll + D log bins) / (D log 2)``: the NLL in nats of an image scaled to
    ``[0, 1)`` (one value per image) in bits per dimension of the ``[0, bins)``
    pixel space."""
    nll = np.asarray(nll_nats, dtype=np.float64)
    return (nll + dims * math.log(bins)) / (dims * LOG_2)


def standard_normal_nll(x):
    """NLL in nats of each row of ``x`` (N, ...) under N(0, I): a closed form to
    check ``bits_per_dim`` against."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return 0.5 * np.sum(x ** 2, axis=1) + 0.5 * x.shape[1] * LOG_2PI


def one_hot(labels, num_classes=10):
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


@keras.saving.register_keras_serializable(package="cinn")
class BroadcastLabel(keras.layers.Layer):
    """Condition network of a class-conditional image flow: a one-hot label
    (batch, classes) -> one feature map per level, the label repeated over that
    level's grid (the flow's couplings and learned priors then see it everywhere)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [tuple(int(d) for d in s) for s in sizes]

    def call(self, c):
        c = ops.cast(c, self.compute_dtype)
        b, k = ops.shape(c)[0], c.shape[-1]
        return [ops.broadcast_to(ops.reshape(c, (b, 1, 1, k)), (b, h, w, k))
                for h, w in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": [list(s) for s in self.sizes]}


def _grid_sizes(x_shape, levels):
    h, w = int(x_shape[0]), int(x_shape[1])
    sizes = []
    for lv in levels:
        if lv.get("downsample"):
            h, w = h // 2, w // 2
        sizes.append((h, w))
    return sizes


def glow_levels(levels=2, steps=8, hidden=96):
    """Glow (Kingma & Dhariwal 2018) as ``ConditionalINN`` levels: per level a
    squeeze, ``steps`` x (ActNorm, invertible 1x1 convolution, affine coupling),
    and a split with a learned prior after every level but the last."""
    subnet = {"type": "conv", "hidden": int(hidden)}
    return [{"downsample": "squeeze", "blocks": int(steps), "actnorm": True,
             "permute": "conv1x1", "subnet": subnet,
             "split": "prior" if i < levels - 1 else None} for i in range(int(levels))]


def realnvp_levels(levels=2, steps=3, hidden=96):
    """RealNVP (Dinh et al. 2017) as ``ConditionalINN`` levels: per scale but the
    last, ``steps`` checkerboard-masked affine couplings of alternating parity, a
    squeeze, ``steps`` channel-masked ones and a split of half the channels; the
    last scale ``steps + 1`` checkerboard couplings. ActNorm stands in for
    RealNVP's batch normalisation."""
    subnet = {"type": "conv", "hidden": int(hidden)}
    out = []
    for i in range(int(levels)):
        last = i == levels - 1
        out.append({"blocks": int(steps) + last, "permute": None, "coupling": "checkerboard",
                    "subnet": subnet})
        if not last:
            out.append({"downsample": "squeeze", "blocks": int(steps), "permute": None,
                        "coupling": "channel", "subnet": subnet, "split": "plain"})
    return out


def image_flow(model="glow", x_shape=(28, 28, 1), levels=2, steps=8, hidden=96,
               num_classes=None, seed=0, clamp=2.0):
    """An unconditional (``num_classes=None``) or class-conditional image flow
    trained in bits/dim of 8-bit data (``bin_width=1/256``); ``clamp``: the soft
    clamp of every log-scale (``ConditionalINN``)."""
    if model == "glow":
        lv = glow_levels(levels, steps, hidden)
    elif model == "realnvp":
        lv = realnvp_levels(levels, steps, hidden)
    else:
        raise ValueError(f"model must be 'glow' or 'realnvp', got {model!r}")
    cond_shape = cond_net = None
    if num_classes:
        cond_shape = (int(num_classes),)
        cond_net = BroadcastLabel(_grid_sizes(x_shape, lv), name="label_broadcast")
    return ConditionalINN(tuple(x_shape), cond_shape, levels=lv, cond_net=cond_net,
                          bin_width=1.0 / BINS, seed=seed, clamp=clamp, name=f"{model}_flow")


def nll_nats(model, x, c=None, batch_size=500):
    """``-log p(x | c)`` in nats per image (NumPy, float64), in batches, one
    compiled encode."""
    from cinn.compile import compiled

    encode = compiled(model, "encode")
    out = []
    for i in range(0, len(x), batch_size):
        xb = ops.convert_to_tensor(x[i:i + batch_size])
        cb = None if c is None else ops.convert_to_tensor(c[i:i + batch_size])
        z, log_det = encode(xb, cb)
        z = ops.convert_to_numpy(z).astype(np.float64)
        out.append(0.5 * np.sum(z ** 2, axis=1) + 0.5 * z.shape[1] * LOG_2PI
                   - ops.convert_to_numpy(log_det).astype(np.float64))
    return np.concatenate(out)


def test_bits_per_dim(model, images, labels=None, seed=0, batch_size=500):
    """Bits/dim of 8-bit ``images`` (one uniform dequantisation draw each, seeded):
    returns the per-image values; their mean is the figure the tables report."""
    x = dequantize(images, seed)
    c = None if labels is None else one_hot(labels, model.cond_shape[0])
    return bits_per_dim(nll_nats(model, x, c, batch_size), int(np.prod(x.shape[1:])))


test_bits_per_dim.__test__ = False  # not a pytest test
