"""Training data: random crops of a folder of images, batched as ``((x, c),)``.

Plain NumPy and OpenCV, so it feeds ``model.fit`` on TensorFlow and on JAX
(no TensorFlow needed).
"""
import numpy as np
import keras

from cinn.apps.common.images import list_images, read_image
from cinn.errors import CinnError


def load_folder(folder, min_size=2, keep=None, limit=None):
    """All readable images of a folder as uint8 RGB arrays. Unreadable files are
    skipped; ``keep(rgb) -> bool`` filters (e.g. colour images only)."""
    images = []
    for path in list_images(folder):
        try:
            img = read_image(path, min_size=min_size)
        except CinnError:
            continue
        if keep is None or keep(img):
            images.append(img)
        if limit and len(images) >= limit:
            break
    if not images:
        raise CinnError(f"{folder}: no usable images")
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
