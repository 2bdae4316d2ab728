"""The inpainting cINN: p(hole | masked image, mask).

Representation (images scaled to [-0.5, 0.5] by ``to_flow``, bin width 1/255):

* condition c, 4 channels: the masked image with its hole pre-filled by
  OpenCV's Telea inpainting (``fill_hole``; mid-grey when nothing is known) and
  the mask (1 = missing). A ``ConditionNet`` turns c into features at every level.
* flow variable x (``make_target``): inside the hole the residual
  ``image - fill``; outside it Gaussian noise of std ``KNOWN_NOISE``.

Why: a flow over the plain image must model the known pixels too, whose
density given c is a near-delta (they are in the condition): that takes most of
the capacity and gradient of a small model. Known pixels are replaced by noise
of a fixed, easy density, so the likelihood is spent on the hole; the residual
over the classical fill lets the flow start from a sensible mean and learn the
texture and variations around it. At sampling the known part of x is thrown
away and the known pixels are copied from the input.
"""
import keras
import numpy as np

import cinn
from apps.common.condnet import build_cond_net

APP = "inpainting"

#: defaults of the ``model`` section of the config
DEFAULTS = {
    "levels": 3,            # Haar downsamplings (sizes must be multiples of 2**levels)
    "blocks": 2,            # flow steps per level
    "hidden": 32,           # width of the coupling subnets
    "cond_channels": 32,    # condition features per level
    "cond_hidden": 32,      # width of the conditioning network
    "cond_blocks": 1,       # residual blocks in the conditioning trunk (unet: per depth)
    "cond_net": "pyramid",  # "pyramid" or "unet" (apps.common.condnet: sees the whole crop)
    "cond_widths": [32, 48, 64, 96],  # unet: width at full resolution, H/2, H/4, H/8
    "cond_context": True,   # unet: the bottleneck's global mean added everywhere
    "split": "prior",       # factor half the channels out after each level but the last
    "clamp": 2.0,
    "seed": 0,
}


@keras.saving.register_keras_serializable(package="cinn_apps")
class InpaintingINN(cinn.ConditionalINN):
    """A ``ConditionalINN`` marked as the inpainting app's model."""

    app = APP


def build_model(cfg=None):
    """The inpainting model from the ``model`` section of a config (see ``DEFAULTS``)."""
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise cinn.CinnError(f"unknown inpainting model option(s) {sorted(unknown)}; "
                             f"known: {sorted(DEFAULTS)}")
    n = int(cfg["levels"])
    subnet = {"type": "conv", "hidden": int(cfg["hidden"]), "depth": 2}
    levels = [{"downsample": "haar", "blocks": int(cfg["blocks"]), "subnet": subnet,
               "split": cfg["split"] if i < n - 1 else None} for i in range(n)]
    cond_net = build_cond_net(cfg, [-(i + 1) for i in range(n)])
    return InpaintingINN(x_shape=(None, None, 3), cond_shape=(None, None, 4), levels=levels,
                         cond_net=cond_net, clamp=float(cfg["clamp"]), bin_width=1 / 255,
                         seed=int(cfg["seed"]), name="inpainting_inn")


def to_flow(rgb):
    """uint8 RGB (..., 3) -> float32 in [-0.5, 0.5]."""
    return np.asarray(rgb, np.float32) / 255.0 - 0.5


def from_flow(x):
    """float in [-0.5, 0.5] -> uint8 RGB (rounded, clipped)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 0.5) * 255.0), 0, 255).astype(np.uint8)


#: std of the noise that stands in for the known pixels in the flow variable
KNOWN_NOISE = 0.1


def fill_hole(rgb, mask, radius=3):
    """uint8 (H, W, 3) image with the ``mask`` pixels filled by OpenCV's Telea
    inpainting (mid-grey when the mask covers everything); known pixels kept."""
    import cv2

    mask = np.asarray(mask, bool)
    if mask.all():
        return np.full_like(rgb, 128)
    if not mask.any():
        return np.array(rgb, copy=True)
    out = cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8) * 255, radius,
                      cv2.INPAINT_TELEA)
    return np.where(mask[..., None], out, rgb)


def make_condition(filled, mask):
    """Flow-scaled filled image ``(..., H, W, 3)`` and bool mask ``(..., H, W)`` ->
    ``(..., H, W, 4)`` float32 condition."""
    m = np.asarray(mask, np.float32)[..., None]
    return np.concatenate([np.asarray(filled, np.float32), m], axis=-1)


def make_target(x, filled, mask, rng):
    """The flow variable: ``x - filled`` in the hole, ``N(0, KNOWN_NOISE^2)`` noise
    elsewhere (all flow-scaled, float32)."""
    m = np.asarray(mask, bool)[..., None]
    noise = np.random.default_rng(rng).normal(0.0, KNOWN_NOISE, np.shape(x))
    return np.where(m, np.asarray(x, np.float32) - filled, noise).astype(np.float32)


def prepare(rgb, masks, rng):
    """uint8 images (B, H, W, 3) and bool masks (B, H, W) -> ``(x, c)`` for training."""
    filled = to_flow(np.stack([fill_hole(im, m) for im, m in zip(rgb, masks)]))
    return make_target(to_flow(rgb), filled, masks, rng), make_condition(filled, masks)
