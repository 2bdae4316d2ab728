"""Colorization data: random crops of colour photos as ``x = ab / 100``, ``c = L / 50 - 1``.

NumPy + OpenCV loading (no TensorFlow needed); the Lab conversion is
``cinn.apps.colorization.color`` (keras.ops on NumPy input). Dequantisation noise
is added by the model (``bin_width`` = 1 ab unit) while training.
"""
import functools

import numpy as np
from keras import ops

from cinn.apps.colorization.color import split_lab
from cinn.apps.colorization.global_colour import check_hue, check_saturation, recolour
from cinn.apps.common.data import CropDataset, FixedDataset, center_crops, load_folder
from cinn.apps.common.images import is_greyscale

DATA_DEFAULTS = {"crop": 64, "batch_size": 16, "steps_per_epoch": 100, "val_images": 16,
                 "limit": None, "saturation": None, "hue": None}


def to_pair(rgb_uint8, rng=None, saturation=None, hue=None):
    """uint8 RGB crops (B, H, W, 3) -> float32 ``(ab / 100, L / 50 - 1)``.

    Training crops only: ``saturation=(lo, hi)``: each crop's ab scaled by its own
    factor, drawn log-uniformly from ``[lo, hi]``; ``hue=h``: each crop's ab rotated
    by its own angle, uniform in ``[-h, h]`` degrees (both with ``rng``); L is unchanged.
    """
    c, x = split_lab(rgb_uint8)
    x = np.asarray(ops.convert_to_numpy(x), "float32")
    saturation = check_saturation(saturation, "data.saturation")
    hue = check_hue(hue, "data.hue")
    if rng is None and (saturation is not None or hue):
        rng = np.random.default_rng()
    scale = np.ones(len(x), "float32")
    degrees = np.zeros(len(x), "float32")
    if saturation is not None:
        scale = np.exp(rng.uniform(*np.log(saturation), size=len(x))).astype("float32")
    if hue:
        degrees = rng.uniform(-hue, hue, size=len(x)).astype("float32")
    if saturation is not None or hue:
        x = np.asarray(ops.convert_to_numpy(recolour(x, scale, degrees)), "float32")
    return x, np.asarray(ops.convert_to_numpy(c), "float32")


def load_colour_images(folder, limit=None):
    """The colour images of a folder (greyscale files are skipped)."""
    return load_folder(folder, min_size=2, keep=lambda im: not is_greyscale(im), limit=limit)


def make_datasets(data_dir, cfg, seed=0):
    """Training (random crops + flips; ``data.saturation`` / ``data.hue``: ab scaled /
    rotated per crop) and
    validation (centre crops of held-out images, never scaled) ``PyDataset``s for
    ``model.fit``."""
    d = {**DATA_DEFAULTS, **cfg.get("data", {})}
    images = load_colour_images(data_dir, limit=d["limit"])
    n_val = min(int(d["val_images"]), len(images) // 5)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    val = [images[i] for i in order[:n_val]]
    train = [images[i] for i in order[n_val:]]
    make_pair = functools.partial(to_pair,
                                  saturation=check_saturation(d["saturation"], "data.saturation"),
                                  hue=check_hue(d["hue"], "data.hue"))
    train_ds = CropDataset(train, make_pair, d["crop"], d["batch_size"], d["steps_per_epoch"],
                           seed=seed)
    val_ds = None
    if val:
        x, c = to_pair(center_crops(val, int(d["crop"])))
        val_ds = FixedDataset(x, c, d["batch_size"])
    return train_ds, val_ds
