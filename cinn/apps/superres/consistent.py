"""An exact, LR-consistent parametrisation of HR images (what the flow models).

With ``D`` the bicubic downscale (``resize.downscale``) and ``U`` the bicubic
upscale, an HR image ``x`` (H = s*h, W = s*w) is written as

    x = U(lr) + r,   r = blocks(Q^T [l, d])

where every s x s block of the residual ``r`` is expanded in an orthonormal
block-Haar basis ``Q`` (first basis image constant): one coarse coefficient
``l`` and ``s*s - 1`` detail coefficients ``d`` per LR pixel and colour.
``to_details(x, lr)`` returns ``d`` (shape (..., h, w, 3*(s*s-1))); the flow
models ``p(d | lr)``. ``from_details(d, lr)`` builds ``x`` and solves the
coarse part ``l`` from ``D(x) = lr``: the map ``l -> D(blocks(Q^T [l, 0]))``
is, per axis, the small well-conditioned matrix ``A = D N`` (condition number
about 1.6 for 4x and 8x), so ``l = Av^-1 (lr - D(U(lr)) - D(r_d)) Ah^-T`` and
every sample downscales to ``lr`` exactly (up to float rounding; the uint8
rounding and clipping of the output are the only loss).

The base image is ``U(lr)`` (``base="bicubic"``) or ``U(P lr)`` with ``P = (D U)^-1``
per axis (``base="consistent"``; ``D U`` has condition number about 2): the smooth
image that already downscales to ``lr``, so zero details give a smooth, consistent
image. With the bicubic base the coarse part of zero details is constant per s x s
block, a visible block grid at 8x that the flow has to learn to cancel.
"""
from functools import lru_cache

import numpy as np

from cinn.apps.superres.resize import resize_matrix


@lru_cache(maxsize=8)
def haar_matrix(s):
    """Orthonormal 1D multi-level Haar matrix (s x s, s a power of 2); row 0 constant."""
    m = np.array([[1.0]])
    while m.shape[0] < s:
        n = m.shape[0]
        low = np.kron(m, [1.0, 1.0]) / np.sqrt(2)
        high = np.kron(np.eye(n), [1.0, -1.0]) / np.sqrt(2)
        m = np.concatenate([low, high], axis=0)
    m.setflags(write=False)
    return m


@lru_cache(maxsize=8)
def block_basis(s):
    """(s*s, s*s) orthonormal 2D block basis, row 0 = constant 1/s."""
    h1 = haar_matrix(s)
    q = np.kron(h1, h1)
    q.setflags(write=False)
    return q


def to_unit(img_uint8):
    """uint8 -> float32 in [-0.5, 0.5] (the units of the flow and its condition)."""
    return np.asarray(img_uint8, np.float32) / 255.0 - 0.5


def detail_channels(scale, colours=3):
    return colours * (scale * scale - 1)


def _to_blocks(img, s):
    """(..., s*h, s*w, C) -> (..., h, w, s*s, C)"""
    *lead, hh, ww, c = img.shape
    h, w = hh // s, ww // s
    b = img.reshape(*lead, h, s, w, s, c)
    b = np.moveaxis(b, -4, -3)  # (..., h, w, s, s, C)
    return b.reshape(*lead, h, w, s * s, c)


def _from_blocks(b, s):
    """(..., h, w, s*s, C) -> (..., s*h, s*w, C)"""
    *lead, h, w, _, c = b.shape
    b = b.reshape(*lead, h, w, s, s, c)
    b = np.moveaxis(b, -3, -4)  # (..., h, s, w, s, C)
    return b.reshape(*lead, h * s, w * s, c)


@lru_cache(maxsize=64)
def _axis_ops(n_lr, s):
    """Per axis: upscale U (s*n, n), downscale D (n, s*n), inverse of A = D N (n, n)."""
    up = resize_matrix(n_lr, n_lr * s)
    down = resize_matrix(n_lr * s, n_lr)
    nmat = np.kron(np.eye(n_lr), np.ones((s, 1))) / np.sqrt(s)
    a_inv = np.linalg.inv(down @ nmat)
    p = np.linalg.inv(down @ up)
    return up, down, a_inv, p


BASES = ("bicubic", "consistent")


def check_base(base):
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES}, got {base!r}")
    return base


def base_lr(lr, scale, base="bicubic"):
    """The LR image whose bicubic upscale is the base image: ``lr`` itself, or
    ``P lr`` (``base="consistent"``: ``D(U(P lr)) == lr``)."""
    lr = np.asarray(lr, np.float64)
    if check_base(base) == "bicubic":
        return lr
    pv = _axis_ops(lr.shape[-3], int(scale))[3]
    ph = _axis_ops(lr.shape[-2], int(scale))[3]
    return _apply(pv, lr, ph)


def _apply(mv, img, mh):
    return np.einsum("ih,...hwc,jw->...ijc", mv, img, mh, optimize=True)


def to_details(hr, lr, scale, base="bicubic"):
    """HR (..., s*h, s*w, C) and its LR (..., h, w, C), float -> details
    (..., h, w, C*(s*s-1)) float32 of the residual over the ``base`` image."""
    s = int(scale)
    h, w = lr.shape[-3], lr.shape[-2]
    uv = _axis_ops(h, s)[0]
    uh = _axis_ops(w, s)[0]
    r = np.asarray(hr, np.float64) - _apply(uv, base_lr(lr, s, base), uh)
    coef = np.einsum("pq,...qc->...pc", block_basis(s), _to_blocks(r, s))
    d = coef[..., 1:, :]
    return d.reshape(*d.shape[:-2], -1).astype(np.float32)


def from_details(details, lr, scale, rows=128, base="bicubic"):
    """Details (..., h, w, C*(s*s-1)) and LR (..., h, w, C) -> HR (..., s*h, s*w, C)
    float64 whose bicubic downscale equals ``lr``.

    Built in place in one HR array, ``rows`` LR rows at a time where a step needs a
    temporary (about one HR array of memory in all, not seven)."""
    s = int(scale)
    lr = np.asarray(lr, np.float64)
    c = lr.shape[-1]
    h, w = lr.shape[-3], lr.shape[-2]
    d = np.asarray(details)
    d = d.reshape(*d.shape[:-1], s * s - 1, c)
    lead = np.broadcast_shapes(lr.shape[:-3], d.shape[:-4])
    uv, dv, av, _ = _axis_ops(h, s)
    uh, dh, ah, _ = _axis_ops(w, s)
    lr_b = base_lr(lr, s, base)
    q = block_basis(s)[1:].reshape(s * s - 1, s, s)
    x = np.empty(lead + (h, s, w, s, c))
    blocks = np.moveaxis(x, -4, -3)                           # (..., h, w, s, s, C) view
    hr = x.reshape(lead + (h * s, w * s, c))                  # (..., H, W, C) view
    for i in range(0, h, rows):
        j = min(h, i + rows)
        # r_d: the detail coefficients in the block basis
        blocks[..., i:j, :, :, :, :] = np.einsum("qab,...hwqc->...hwabc", q,
                                                 d[..., i:j, :, :, :])
        hr[..., i * s:j * s, :, :] += _apply(uv[i * s:j * s], lr_b, uh)  # + base
    rhs = np.broadcast_to(lr, lead + lr.shape[-3:]).copy()
    for i in range(0, h * s, rows * s):                       # - D(x), by HR row blocks
        rhs -= _apply(dv[:, i:i + rows * s], hr[..., i:i + rows * s, :, :], dh)
    coarse = _apply(av, rhs, ah)                              # (..., h, w, C)
    x += coarse[..., :, None, :, None, :] / s                 # + r_l, constant per block
    return hr
