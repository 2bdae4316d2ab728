"""``cinn train superres``: training data and model (evaluation: ``cinn.apps.superres.evaluate``)."""
from functools import partial

from cinn.apps.common.data import (DATA_DEFAULTS, CropDataset, FixedDataset, center_crops,
                                   load_folder)
from cinn.apps.superres import model as M
from cinn.apps.superres.consistent import check_base, to_details, to_unit
from cinn.apps.superres.resize import make_lr
from cinn.errors import CinnError

build_model = M.build_model


def make_pair(crops, rng, scale, base="bicubic"):
    """uint8 HR crops (B, S, S, 3) -> ``(x, c)``: the LR-consistent detail coefficients
    of the HR crop over the ``base`` image and the LR condition (both float32, LR grid)."""
    lr = make_lr(crops, scale)
    x = to_details(to_unit(crops), to_unit(lr), scale, base)
    return x, to_unit(lr)


def config_variant(args):
    """``cinn train superres --scale 8`` reads ``configs/superres_x8.yaml``."""
    scale = getattr(args, "scale", None)
    return f"x{scale}" if scale and int(scale) != 4 else None


def make_datasets(data_dir, cfg, seed=0):
    """Random ``crop`` x ``crop`` HR patches (train) and centre crops of the last
    ``val_images`` images (validation)."""
    d, m = {**DATA_DEFAULTS, **cfg["data"]}, {**M.DEFAULTS, **cfg["model"]}
    scale = int(m["scale"])
    mult = scale * 2 ** (int(m["levels"]) - 1)
    crop, batch = int(d["crop"]), int(d["batch_size"])
    if crop % mult:
        raise CinnError(f"data.crop must be a multiple of {mult} for scale {scale}, got {crop}")
    images = load_folder(data_dir, min_size=crop // 2)
    n_val = min(int(d["val_images"]), len(images) // 5)
    train_imgs, val_imgs = (images[:-n_val], images[-n_val:]) if n_val else (images, [])
    pair = partial(make_pair, scale=scale, base=check_base(m["base"]))
    train = CropDataset(train_imgs, pair, crop, batch, int(d["steps_per_epoch"]),
                        seed=seed)
    if not val_imgs:
        return train, None
    x, c = pair(center_crops(val_imgs, crop), None)
    return train, FixedDataset(x, c, batch)


def render_samples(c, samples, model=None):
    """The per-epoch picture of ``cinn train`` (TensorBoard, ``samples/epoch-NNN.png``):
    per validation input a row bicubic | its super-resolved samples | their uncertainty
    map. ``c``: (B, h, w, 3) LR in [-0.5, 0.5], ``samples``: (B, n, h, w, 3(s*s-1))
    detail coefficients of ``model`` (its ``base``; bicubic without a model)."""
    import numpy as np

    from cinn.apps.common.uncertainty import sample_rows
    from cinn.apps.superres.consistent import from_details
    from cinn.apps.superres.resize import to_uint8, upscale

    lr = np.asarray(c, np.float64)
    det = np.asarray(samples, np.float64)
    scale = int(round(np.sqrt(det.shape[-1] / lr.shape[-1] + 1)))
    base = getattr(model, "base", "bicubic")
    hr = (from_details(det, lr[:, None], scale, base=base) + 0.5) * 255.0
    bicubic = to_uint8(upscale(np.rint((lr + 0.5) * 255.0).clip(0, 255), scale))
    return sample_rows(bicubic, to_uint8(hr), hr)
