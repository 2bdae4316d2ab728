"""MATLAB-style bicubic ``imresize`` (with antialiasing when shrinking) in NumPy.

This is the kernel of the super-resolution literature: LR images are made with
``imresize(HR, 1/scale)`` and PSNR is compared on its outputs. The resize of one
axis is a fixed matrix (``resize_matrix``), so an image resize is
``Wv @ img @ Wh.T`` per channel; borders are handled by symmetric reflection,
as in MATLAB.
"""
from functools import lru_cache

import numpy as np

from cinn.errors import CinnError


def cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@lru_cache(maxsize=64)
def resize_matrix(in_len, out_len, antialias=True):
    """The (out_len, in_len) float64 matrix that resizes one axis like MATLAB's
    ``imresize(..., 'bicubic')``. Read-only (cached)."""
    in_len, out_len = int(in_len), int(out_len)
    if in_len < 1 or out_len < 1:
        raise CinnError(f"cannot resize {in_len} pixels to {out_len}")
    scale = out_len / in_len
    width = 4.0
    kernel = cubic
    if scale < 1 and antialias:
        width = width / scale
        kernel = lambda t: scale * cubic(scale * t)  # noqa: E731
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)           # 1-based input coordinate
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric reflection of out-of-range indices (MATLAB: [1:n, n:-1:1])
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    rows = np.repeat(np.arange(out_len), taps)
    np.add.at(mat, (rows, src.ravel()), w.ravel())
    mat.setflags(write=False)
    return mat


def imresize(img, out_hw, antialias=True):
    """Resize float image(s) ``(..., H, W, C)`` to ``out_hw`` = (h, w): float64 out,
    no rounding (use ``to_uint8`` for MATLAB's uint8 behaviour)."""
    img = np.asarray(img, dtype=np.float64)
    h, w = int(out_hw[0]), int(out_hw[1])
    mv = resize_matrix(img.shape[-3], h, antialias)
    mh = resize_matrix(img.shape[-2], w, antialias)
    return np.einsum("ih,...hwc,jw->...ijc", mv, img, mh, optimize=True)


def to_uint8(img):
    """Round and clip to uint8, as MATLAB does for uint8 images (a block of rows
    at a time: no full-size float temporaries)."""
    img = np.asarray(img)
    if img.ndim < 2:
        return np.clip(np.round(img), 0, 255).astype(np.uint8)
    out = np.empty(img.shape, np.uint8)
    src, dst = img.reshape((-1,) + img.shape[-2:]), out.reshape((-1,) + img.shape[-2:])
    for i in range(0, len(src), 256):
        dst[i:i + 256] = np.clip(np.round(src[i:i + 256]), 0, 255)
    return out


def downscale(img, scale):
    """``imresize(img, 1/scale)`` of (..., H, W, C) with H, W multiples of ``scale``."""
    hh, ww = img.shape[-3], img.shape[-2]
    if hh % scale or ww % scale:
        raise CinnError(f"image of {ww}x{hh} pixels is not a multiple of the scale {scale}")
    return imresize(img, (hh // scale, ww // scale))


def upscale(img, scale):
    """Bicubic ``imresize(img, scale)`` of (..., h, w, C)."""
    return imresize(img, (img.shape[-3] * scale, img.shape[-2] * scale))


def make_lr(hr_uint8, scale):
    """The LR image of the literature: MATLAB bicubic ``imresize(HR, 1/scale)``, uint8."""
    return to_uint8(downscale(np.asarray(hr_uint8, np.float64), scale))
