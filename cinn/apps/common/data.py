"""Training data: random crops of a folder of images, batched as ``((x, c),)``.

Plain NumPy and OpenCV, so it feeds ``model.fit`` on TensorFlow and on JAX
(no TensorFlow needed).
"""
import sys

import keras
import numpy as np

from cinn.apps.common.images import list_images, read_image
from cinn.errors import CinnError

#: unreadable files of a folder named one by one in warnings (then counted)
MAX_WARNINGS = 10
#: the ``data`` section every app's config has: its keys (an app's task adds its own
#: ``DATA_DEFAULTS``; ``cinn.apps.common.config`` allows these and no others) and the
#: defaults of the apps that keep these
DATA_DEFAULTS = {
    "crop": 64,              # side of the square training crops in pixels
    "batch_size": 16,
    "steps_per_epoch": 100,
    "val_images": 16,        # held out for validation (at most a fifth of the images)
}


def load_folder(folder, min_size=2, keep=None, limit=None, left_out="left out"):
    """All readable images of a folder, or of a list of folders (in order), as uint8
    RGB arrays. An unreadable or too small file is skipped with a warning naming it
    (stderr; the first ``MAX_WARNINGS`` of a folder, then their count);
    ``keep(rgb) -> bool`` filters (e.g. colour images only), the images it refuses
    being ``left_out`` (e.g. "greyscale"); ``limit``: at most that many in all. A
    folder with no usable image is a ``CinnError`` that counts why."""
    folders = list(folder) if isinstance(folder, (list, tuple)) else [folder]
    if len(folders) != 1:
        images = []
        for one in folders:
            images += load_folder(one, min_size, keep,
                                  None if not limit else limit - len(images), left_out)
            if limit and len(images) >= limit:
                break
        return images
    folder = folders[0]
    images, skipped, refused = [], 0, 0
    paths = list_images(folder)
    for path in paths:
        try:
            img = read_image(path, min_size=min_size)
        except CinnError as err:
            skipped += 1
            if skipped <= MAX_WARNINGS:
                print(f"cinn: warning: skipped {err}", file=sys.stderr, flush=True)
            continue
        if keep is None or keep(img):
            images.append(img)
        else:
            refused += 1
        if limit and len(images) >= limit:
            break
    if skipped > MAX_WARNINGS:
        print(f"cinn: warning: skipped {skipped - MAX_WARNINGS} more unreadable or too small "
              f"files in {folder}", file=sys.stderr, flush=True)
    if not images:
        why = [f"{n} {what}" for n, what in ((skipped, "unreadable or too small"),
                                            (refused, left_out)) if n]
        raise CinnError(f"{folder}: no usable images among its {len(paths)} image files: "
                        f"{', '.join(why)}")
    return images


def random_crops(images, size, count, rng, flip=True):
    """``count`` random ``size`` x ``size`` crops (uint8, (count, size, size, 3))."""
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        img = images[rng.integers(len(images))]
        h, w = img.shape[:2]
        if min(h, w) < size:
            s = size / min(h, w)
            img = _resize(img, (max(size, round(w * s)), max(size, round(h * s))))
            h, w = img.shape[:2]
        y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
        crop = img[y:y + size, x:x + size]
        if flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop
    return out


def center_crops(images, size):
    """One centre crop per image (images smaller than ``size`` are resized up)."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        if min(h, w) < size:
            s = size / min(h, w)
            img = _resize(img, (max(size, round(w * s)), max(size, round(h * s))))
            h, w = img.shape[:2]
        y, x = (h - size) // 2, (w - size) // 2
        out.append(img[y:y + size, x:x + size])
    return np.stack(out)


def _resize(img, size_wh):
    import cv2

    return cv2.resize(img, size_wh, interpolation=cv2.INTER_AREA)


class CropDataset(keras.utils.PyDataset):
    """Batches of random crops turned into ``((x, c),)`` by ``make_pair``.

    ``make_pair(uint8 crops (B, S, S, 3), rng) -> (x, c)`` float32 arrays.
    Batch ``i`` of epoch ``e`` is the same for the same ``seed``: reproducible runs.

    Batches are made ahead of the training step by ``workers`` threads (default
    2; Keras keeps their order), so reading and cropping overlap the step: with
    one worker the JAX trainer makes each batch in the training thread, between
    two steps.
    """

    def __init__(self, images, make_pair, crop, batch_size, steps, seed=0, flip=True, **kwargs):
        kwargs.setdefault("workers", 2)
        super().__init__(**kwargs)
        self.images, self.make_pair = images, make_pair
        self.crop, self.batch_size, self.steps = int(crop), int(batch_size), int(steps)
        self.seed, self.flip, self.epoch = int(seed), flip, 0

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        crops = random_crops(self.images, self.crop, self.batch_size, rng, self.flip)
        return (self.make_pair(crops, rng),)

    def on_epoch_end(self):
        self.epoch += 1


class FixedDataset(keras.utils.PyDataset):
    """Fixed pairs (validation): ``((x, c),)`` batches of precomputed arrays."""

    def __init__(self, x, c, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.c, self.batch_size = x, c, int(batch_size)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return ((self.x[s], self.c[s]),)
