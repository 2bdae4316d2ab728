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
from cinn.apps.common.condnet import build_cond_net
from cinn.apps.inpainting.regressor import InpaintingRegressor

APP = "inpainting"

#: defaults of the ``model`` section of the config
DEFAULTS = {
    "levels": 3,            # Haar downsamplings (sizes must be multiples of 2**levels)
    "blocks": 2,            # flow steps per level
    "subnet": {"hidden": 32, "depth": 2},  # the coupling and prior subnets
    "cond_channels": 32,    # condition features per level
    "cond_hidden": 32,      # width of the conditioning network
    "cond_blocks": 1,       # residual blocks in the conditioning trunk (unet: per depth)
    "cond_net": "pyramid",  # "pyramid" or "unet" (cinn.apps.common.condnet: sees the whole crop)
    "cond_widths": [32, 48, 64, 96],  # unet: width at full resolution, H/2, H/4, H/8
    "cond_context": True,   # unet: the bottleneck's global mean added everywhere
    "split": "prior",       # factor half the channels out after each level but the last
    "clamp": 2.0,
    "seed": 0,
    "type": "flow",         # "flow": the cINN; "regressor": the L2 U-Net (regressor.py)
    "fill_init": None,      # flow: an InpaintingRegressor .keras file whose prediction
                            # refines the Telea fill (frozen, stored in the model)
}


@keras.saving.register_keras_serializable(package="cinn_apps")
class InpaintingINN(cinn.ConditionalINN):
    """A ``ConditionalINN`` marked as the inpainting app's model. ``fill_net``: an
    optional, frozen ``InpaintingRegressor`` that refines the Telea fill before the
    flow sees it (``refine_fill``); it is stored in the model file."""

    app = APP

    def __init__(self, *args, fill_net=None, **kwargs):
        if fill_net is not None:
            fill_net.trainable = False
        self._fill_net_arg = fill_net  # taken by build(), which the base __init__ calls
        super().__init__(*args, **kwargs)

    def build(self, input_shape=None):
        if not self.built:  # state is locked once built: add the sub-model first
            self.fill_net = self._fill_net_arg
        super().build(input_shape)

    def get_config(self):
        return {**super().get_config(), "fill_net": None if self.fill_net is None else
                keras.saving.serialize_keras_object(self.fill_net)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("fill_net") is not None:
            config["fill_net"] = keras.saving.deserialize_keras_object(config["fill_net"])
        return super().from_config(config)


def build_model(cfg=None):
    """The inpainting model from the ``model`` section of a config (see ``DEFAULTS``)."""
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise cinn.CinnError(f"unknown inpainting model option(s) {sorted(unknown)}; "
                             f"known: {sorted(DEFAULTS)}")
    n = int(cfg["levels"])
    if cfg["type"] == "regressor":
        net = build_cond_net({**cfg, "cond_net": "unet", "cond_channels": 12}, [0],
                             name="fill_unet")
        return InpaintingRegressor(net, num_down=len(net.widths), name="inpainting_l2")
    if cfg["type"] != "flow":
        raise cinn.CinnError(f"model.type must be 'flow' or 'regressor', got {cfg['type']!r}")
    subnet = {"type": "conv", **dict(cfg["subnet"])}
    levels = [{"downsample": "haar", "blocks": int(cfg["blocks"]), "subnet": subnet,
               "split": cfg["split"] if i < n - 1 else None} for i in range(n)]
    cond_net = build_cond_net(cfg, [-(i + 1) for i in range(n)])
    return InpaintingINN(x_shape=(None, None, 3), cond_shape=(None, None, 4), levels=levels,
                         cond_net=cond_net, clamp=float(cfg["clamp"]), bin_width=1 / 255,
                         seed=int(cfg["seed"]), fill_net=load_fill_net(cfg["fill_init"]),
                         name="inpainting_inn")


def load_fill_net(path):
    """The ``InpaintingRegressor`` in the ``.keras`` file ``path`` (``None``: none)."""
    if not path:
        return None
    from cinn.apps.common.pretrained import load_model

    net = load_model(APP, path)
    if not isinstance(net, InpaintingRegressor):
        raise cinn.CinnError(f"{path}: model.fill_init must be an inpainting regressor "
                             f"(type: regressor), got {type(net).__name__}")
    return net


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


#: images with more pixels than this run the fill net on a window around the hole only
#: (its memory then follows the hole, not the photo; smaller images run whole)
FILL_WINDOW_PIXELS = 2 ** 19


def hole_window(mask, margin=64):
    """``(y0, y1, x0, x1)``: the bounding box of ``mask`` (bool (H, W)) grown by half its
    size, at least ``margin`` pixels, on every side, within the image; even edges
    (the fill net works at H/2) except where the image ends."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    grow_y = max(margin, (rows[-1] - rows[0] + 1) // 2)
    grow_x = max(margin, (cols[-1] - cols[0] + 1) // 2)
    y0, x0 = max(0, rows[0] - grow_y) // 2 * 2, max(0, cols[0] - grow_x) // 2 * 2
    y1 = min(h, -(-(rows[-1] + 1 + grow_y) // 2) * 2)
    x1 = min(w, -(-(cols[-1] + 1 + grow_x) // 2) * 2)
    return int(y0), int(y1), int(x0), int(x1)


def refine_fill(fill_net, filled, mask):
    """Flow-scaled fills (B, H, W, 3) plus ``fill_net``'s predicted residual in the
    hole (``mask``: bool (B, H, W)), kept in the image range [-0.5, 0.5]; unchanged
    when ``fill_net`` is ``None``. Images over ``FILL_WINDOW_PIXELS`` pixels: the net
    sees ``hole_window`` around the hole (the residual is zero outside the hole)."""
    if fill_net is None:
        return filled
    from keras import ops

    filled = np.array(filled, np.float32)
    mask = np.asarray(mask, bool)
    h, w = mask.shape[1:3]
    if h * w <= FILL_WINDOW_PIXELS:
        residual = ops.convert_to_numpy(fill_net.predict_residual(make_condition(filled, mask)))
        return np.clip(filled + residual, -0.5, 0.5)
    for i in range(len(filled)):
        if not mask[i].any():
            continue
        y0, y1, x0, x1 = hole_window(mask[i])
        win = filled[i:i + 1, y0:y1, x0:x1]
        residual = fill_net.predict_residual(make_condition(win, mask[i:i + 1, y0:y1, x0:x1]))
        filled[i:i + 1, y0:y1, x0:x1] = np.clip(win + ops.convert_to_numpy(residual), -0.5, 0.5)
    return filled


def learned_fill(fill_net, rgb, mask):
    """uint8 (H, W, 3) image with its ``mask`` pixels filled by Telea refined by
    ``fill_net`` (the flow's centre; its deterministic prediction); known pixels kept."""
    from cinn.apps.common.images import pad_to_multiple

    filled, (h, w) = pad_to_multiple(to_flow(fill_hole(rgb, mask)), 2)
    m, _ = pad_to_multiple(np.asarray(mask, bool), 2)
    out = from_flow(refine_fill(fill_net, filled[None], m[None])[0, :h, :w])
    return np.where(np.asarray(mask, bool)[..., None], out, rgb)


def prepare(rgb, masks, rng, fill_net=None):
    """uint8 images (B, H, W, 3) and bool masks (B, H, W) -> ``(x, c)`` for training
    (the Telea fill refined by ``fill_net`` when given)."""
    filled = to_flow(np.stack([fill_hole(im, m) for im, m in zip(rgb, masks)]))
    filled = refine_fill(fill_net, filled, masks)
    return make_target(to_flow(rgb), filled, masks, rng), make_condition(filled, masks)
