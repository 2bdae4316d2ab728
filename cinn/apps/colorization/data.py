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
                 "limit": None, "saturation": None, "hue": None,
                 # whole: each training picture is a random box of a photo (side
                 # min_side..1 of the photo's, independently in height and width)
                 # resized to crop x crop, validation pictures whole photos resized:
                 # what a flow with a fixed working size sees of a photo at inference
                 "whole": False, "min_side": 0.6}


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


def load_colour_images(folder, limit=None, short_side=None):
    """The colour images of a folder or a list of folders (greyscale files are
    skipped); ``short_side``: larger images shrunk (area) to that short side."""
    images = load_folder(folder, min_size=2, keep=lambda im: not is_greyscale(im), limit=limit,
                         left_out="greyscale (colorization learns and is scored on colour photos)")
    if short_side:
        images = [shrink(im, int(short_side)) for im in images]
    return images


def shrink(img, short_side):
    """``img`` resized (area) so that its short side is ``short_side``, if larger."""
    h, w = img.shape[:2]
    if min(h, w) <= short_side:
        return img
    s = short_side / min(h, w)
    return resize(img, max(short_side, round(h * s)), max(short_side, round(w * s)))


def resize(img, h, w):
    """uint8 RGB ``img`` resized to ``h`` x ``w`` (area when shrinking, else bilinear)."""
    import cv2

    small = h <= img.shape[0] and w <= img.shape[1]
    return cv2.resize(img, (int(w), int(h)),
                      interpolation=cv2.INTER_AREA if small else cv2.INTER_LINEAR)


def whole_pictures(images, size):
    """Every image resized to ``size`` x ``size`` (uint8, (B, size, size, 3))."""
    return np.stack([resize(im, size, size) for im in images])


def random_boxes(images, size, count, rng, min_side=0.6, flip=True):
    """``count`` random boxes (height and width each ``min_side``..1 of the image's)
    of random images, resized to ``size`` x ``size``, randomly flipped."""
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        img = images[rng.integers(len(images))]
        h, w = img.shape[:2]
        bh = max(1, round(h * rng.uniform(min_side, 1.0)))
        bw = max(1, round(w * rng.uniform(min_side, 1.0)))
        y, x = rng.integers(h - bh + 1), rng.integers(w - bw + 1)
        box = resize(img[y:y + bh, x:x + bw], size, size)
        out[i] = box[:, ::-1] if flip and rng.random() < 0.5 else box
    return out


class BoxDataset(CropDataset):
    """``CropDataset`` whose pictures are ``random_boxes`` (``data.whole``)."""

    def __init__(self, *args, min_side=0.6, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_side = float(min_side)

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        boxes = random_boxes(self.images, self.crop, self.batch_size, rng, self.min_side,
                             self.flip)
        return (self.make_pair(boxes, rng),)


def make_datasets(data_dir, cfg, seed=0):
    """Training (random crops + flips; ``data.saturation`` / ``data.hue``: ab scaled /
    rotated per crop) and
    validation (centre crops of held-out images, never scaled) ``PyDataset``s for
    ``model.fit``."""
    d = {**DATA_DEFAULTS, **cfg.get("data", {})}
    whole = bool(d["whole"])
    if whole and not 0 < float(d["min_side"]) <= 1:
        raise ValueError(f"data.min_side must be in (0, 1], got {d['min_side']!r}")
    # whole pictures are shrunk to crop x crop anyway: keep them small in memory
    images = load_colour_images(data_dir, limit=d["limit"],
                                short_side=2 * int(d["crop"]) if whole else None)
    n_val = min(int(d["val_images"]), len(images) // 5)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    val = [images[i] for i in order[:n_val]]
    train = [images[i] for i in order[n_val:]]
    make_pair = functools.partial(to_pair,
                                  saturation=check_saturation(d["saturation"], "data.saturation"),
                                  hue=check_hue(d["hue"], "data.hue"))
    if whole:
        train_ds = BoxDataset(train, make_pair, d["crop"], d["batch_size"],
                              d["steps_per_epoch"], seed=seed, min_side=d["min_side"])
    else:
        train_ds = CropDataset(train, make_pair, d["crop"], d["batch_size"],
                               d["steps_per_epoch"], seed=seed)
    val_ds = None
    if val:
        pictures = whole_pictures if whole else center_crops
        x, c = to_pair(pictures(val, int(d["crop"])))
        val_ds = FixedDataset(x, c, d["batch_size"])
    return train_ds, val_ds
