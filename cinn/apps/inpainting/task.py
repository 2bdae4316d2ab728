"""``cinn train inpainting``: training data and model (evaluation: ``cinn.apps.inpainting.evaluate``)."""
from functools import partial

import numpy as np

from cinn.apps.common.data import (DATA_DEFAULTS, CropDataset, FixedDataset, center_crops,
                                   load_folder)
from cinn.apps.inpainting import model as M
from cinn.apps.inpainting.masks import random_masks

build_model = M.build_model


def make_pair(crops, rng, fill_net=None):
    """uint8 crops (B, S, S, 3) -> ``(x, c)`` with random masks (see ``model.prepare``)."""
    return M.prepare(crops, random_masks(len(crops), crops.shape[1:3], rng), rng, fill_net)


def make_datasets(data_dir, cfg, seed=0):
    """Random ``crop`` x ``crop`` patches with random masks (train) and fixed
    centre crops with fixed seeded masks of the last ``val_images`` images (validation)."""
    d = {**DATA_DEFAULTS, **cfg["data"]}
    crop, batch = int(d["crop"]), int(d["batch_size"])
    pair = partial(make_pair, fill_net=M.load_fill_net(cfg.get("model", {}).get("fill_init")))
    images = load_folder(data_dir, min_size=8)
    n_val = min(int(d["val_images"]), len(images) // 5)
    train_imgs, val_imgs = (images[:-n_val], images[-n_val:]) if n_val else (images, [])
    train = CropDataset(train_imgs, pair, crop, batch, int(d["steps_per_epoch"]),
                        seed=seed)
    if not val_imgs:
        return train, None
    x, c = pair(center_crops(val_imgs, crop), np.random.default_rng([seed, 12345]))
    return train, FixedDataset(x, c, batch)


def render_samples(c, samples, model=None):
    """The per-epoch picture of ``cinn train`` (TensorBoard, ``samples/epoch-NNN.png``):
    per validation input a row masked input (hole in white) | its completions | their
    uncertainty map. ``c``: (B, H, W, 4) pre-filled image and mask, ``samples``:
    (B, n, H, W, 3) residuals over the fill (only the hole is used)."""
    from cinn.apps.common.uncertainty import sample_rows

    c = np.asarray(c, np.float32)
    known, hole = M.from_flow(c[..., :3]), c[..., 3] > 0.5
    done = M.from_flow(np.asarray(samples, np.float32) + c[:, None, ..., :3])
    done = np.where(hole[:, None, ..., None], done, known[:, None])
    masked = np.where(hole[..., None], np.uint8(255), known)
    return sample_rows(masked, done)
