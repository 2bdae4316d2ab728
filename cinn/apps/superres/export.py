"""Serving signature of the super-resolution app (``cinn export superres``; TensorFlow).

``upscale(image uint8 [B, h, w, 3], num_samples int32 [], temperature float32 [],
seed int64 []) -> upscaled uint8 [B, N, s*h, s*w, 3]``

Same steps as ``cinn superres`` (``cinn.apps.superres.infer.upscale``): the LR image
padded at the bottom/right to the flow's multiple (reflection), ``N`` samples of
the detail coefficients, cropped, and the HR image rebuilt so that its bicubic
downscale is the input (``cinn.apps.superres.consistent.from_details``). The bicubic
matrices depend on the image size, so they are built in the graph here: a
TensorFlow transcription of ``resize.resize_matrix`` and
``consistent.from_details`` (float64, like the NumPy code). For ``B = 1`` the
bytes equal ``upscale(..., seed=SEED)`` on the TensorFlow backend (up to values
within float error of a rounding boundary).
"""
import math

import numpy as np
import tensorflow as tf

from cinn.apps.superres.consistent import block_basis
from cinn.export import check_sampling_args, pad_to_multiple, sample_with_seed

F64 = tf.float64


def _cubic(x):
    """``resize.cubic`` on tensors."""
    ax = tf.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = tf.cast(ax <= 1, F64)
    far = tf.cast((ax > 1) & (ax <= 2), F64)
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * near
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * far)


def resize_matrix(in_len, out_len, scale):
    """``resize.resize_matrix(in_len, out_len)`` (antialiased) for tensor lengths;
    ``scale = out_len / in_len`` is a static power of two (or its inverse)."""
    width, kernel = 4.0, _cubic
    if scale < 1:
        width = width / scale
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
    taps = int(math.ceil(width)) + 2
    x = tf.cast(tf.range(1, out_len + 1), F64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = tf.floor(u - width / 2)
    idx = left[:, None] + tf.cast(tf.range(taps), F64)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / tf.reduce_sum(w, axis=1, keepdims=True)
    mirror = tf.concat([tf.range(in_len), tf.range(in_len - 1, -1, -1)], axis=0)
    src = tf.gather(mirror, tf.math.floormod(tf.cast(idx, tf.int32) - 1, 2 * in_len))
    rows = tf.repeat(tf.range(out_len), taps)
    flat = rows * in_len + tf.reshape(src, [-1])
    mat = tf.math.unsorted_segment_sum(tf.reshape(w, [-1]), flat, out_len * in_len)
    return tf.reshape(mat, [out_len, in_len])


def _axis_ops(n, s):
    """``consistent._axis_ops``: upscale U (s*n, n), downscale D (n, s*n), inv(D N),
    inv(D U)."""
    up = resize_matrix(n, n * s, float(s))
    down = resize_matrix(n * s, n, 1.0 / s)
    dn = tf.reduce_sum(tf.reshape(down, [n, n, s]), axis=2) / math.sqrt(s)
    return up, down, tf.linalg.inv(dn), tf.linalg.inv(tf.matmul(down, up))


def _apply(mv, img, mh):
    return tf.einsum("ih,...hwc,jw->...ijc", mv, img, mh)


def _from_blocks(b, s):
    """[B, N, h, w, s*s, C] -> [B, N, s*h, s*w, C]"""
    shape = tf.shape(b)
    bsz, n, h, w, c = shape[0], shape[1], shape[2], shape[3], shape[5]
    b = tf.reshape(b, [bsz, n, h, w, s, s, c])
    b = tf.transpose(b, [0, 1, 2, 4, 3, 5, 6])
    return tf.reshape(b, [bsz, n, h * s, w * s, c])


def from_details(details, lr, s, base="bicubic"):
    """``consistent.from_details`` for details [B, N, h, w, 3*(s*s-1)] and LR
    [B, 1, h, w, 3] (float64): HR [B, N, s*h, s*w, 3] whose downscale is ``lr``."""
    shape = tf.shape(details)
    c = 3
    h, w = shape[2], shape[3]
    d = tf.reshape(details, tf.concat([shape[:4], [s * s - 1, c]], 0))
    uv, dv, av, pv = _axis_ops(h, s)
    uh, dh, ah, ph = _axis_ops(w, s)
    q = tf.constant(np.asarray(block_basis(s)), F64)
    r_d = _from_blocks(tf.einsum("qp,...qc->...pc", q[1:], d), s)
    lr_b = lr if base == "bicubic" else _apply(pv, lr, ph)      # consistent.base_lr
    base = _apply(uv, lr_b, uh)
    rhs = lr - _apply(dv, base + r_d, dh)
    coarse = _apply(av, rhs, ah)
    r_l = _from_blocks(tf.repeat(coarse[..., None, :], s * s, axis=-2) / s, s)
    return base + r_d + r_l


def serving_functions(model, raw):
    """``{"upscale": tf.function}`` for a ``SuperResINN``
    (``raw``: the raw signatures of ``cinn.export.raw_functions``)."""
    multiple = 2 ** model.num_down
    s = int(model.scale)

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed")])
    def upscale(image, num_samples, temperature, seed):
        shape = tf.shape(image)
        checks = check_sampling_args(num_samples, temperature) + [
            tf.debugging.Assert(tf.minimum(shape[1], shape[2]) >= 2,
                                ["image must be at least 2x2 pixels, got", shape[1:3]])]
        with tf.control_dependencies(checks):
            lr = tf.cast(image, tf.float32) / 255.0 - 0.5                 # to_unit
        h, w = shape[1], shape[2]
        det, _ = sample_with_seed(model, raw["sample"], pad_to_multiple(lr, multiple),
                                  num_samples, temperature, seed)
        det = tf.cast(det[:, :, :h, :w], F64)
        hr = from_details(det, tf.cast(lr[:, None], F64), s, model.base)
        hr = tf.round((hr + 0.5) * 255.0)                                   # to_uint8
        return {"upscaled": tf.cast(tf.clip_by_value(hr, 0.0, 255.0), tf.uint8)}

    return {"upscale": upscale}
