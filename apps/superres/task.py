"""``cinn train superres`` / ``cinn evaluate superres``: data, model, evaluation."""
from functools import partial

import numpy as np

from apps.common.data import CropDataset, FixedDataset, center_crops, load_folder
from apps.superres import model as M
from apps.superres.consistent import to_details
from apps.superres.resize import downscale, to_uint8
from cinn.errors import CinnError

build_model = M.build_model


def to_unit(img_uint8):
    """uint8 -> float in [-0.5, 0.5] (the units of the flow and its condition)."""
    return np.asarray(img_uint8, np.float32) / 255.0 - 0.5


def make_lr(hr_uint8, scale):
    """The LR image of the literature: MATLAB bicubic ``imresize(HR, 1/scale)``, uint8."""
    return to_uint8(downscale(np.asarray(hr_uint8, np.float64), scale))


def make_pair(crops, rng, scale):
    """uint8 HR crops (B, S, S, 3) -> ``(x, c)``: the LR-consistent detail coefficients
    of the HR crop and the LR condition (both float32, LR grid)."""
    lr = make_lr(crops, scale)
    x = to_details(to_unit(crops), to_unit(lr), scale)
    return x, to_unit(lr)


def config_variant(args):
    """``cinn train superres --scale 8`` reads ``configs/superres_x8.yaml``."""
    scale = getattr(args, "scale", None)
    return f"x{scale}" if scale and int(scale) != 4 else None


def make_datasets(data_dir, cfg, seed=0):
    """Random ``crop`` x ``crop`` HR patches (train) and centre crops of the last
    ``val_images`` images (validation)."""
    d, m = cfg["data"], cfg["model"]
    scale = int(m.get("scale", 4))
    mult = scale * 2 ** (int(m.get("levels", 2)) - 1)
    crop, batch = int(d.get("crop", 96)), int(d.get("batch_size", 16))
    if crop % mult:
        raise CinnError(f"data.crop must be a multiple of {mult} for scale {scale}, got {crop}")
    images = load_folder(data_dir, min_size=crop // 2)
    n_val = min(int(d.get("val_images", 16)), len(images) // 5)
    train_imgs, val_imgs = (images[:-n_val], images[-n_val:]) if n_val else (images, [])
    pair = partial(make_pair, scale=scale)
    train = CropDataset(train_imgs, pair, crop, batch, int(d.get("steps_per_epoch", 100)),
                        seed=seed)
    if not val_imgs:
        return train, None
    x, c = pair(center_crops(val_imgs, crop), None)
    return train, FixedDataset(x, c, batch)


def evaluate(args):
    from apps.superres.evaluate import run

    return run(args)
