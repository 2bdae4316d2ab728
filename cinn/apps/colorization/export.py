"""Serving signature of the colorization app (``cinn export colorization``; TensorFlow).

A flow of any size (``model.keras``, no global latents):
``colorize(image uint8 [B, H, W, 1|3|4], num_samples int32 [], temperature float32 [],
seed int64 []) -> colorized uint8 [B, N, H, W, 3]``: L of the input (its colour is
ignored, a 4th channel too), L padded at the bottom/right to the flow's multiple
(reflection), ``N`` ab samples at ``temperature`` (every latent), cropped, merged with L.

A flow with global latents and a fixed working size (``colorization_global.keras``,
the default): ``colorize(image, num_samples, temperature, local_temperature, seed)``,
the same output for an image of any size: L shrunk to the working size (area average,
``cv2.INTER_AREA``'s weights), ``N`` ab samples there (the global latents at
``temperature``, the others at ``local_temperature``; the app's defaults are 1.15 and
0.5), each brought back to ``H x W`` as ``cinn.apps.colorization.guided`` does
(bicubic with ``cv2.INTER_CUBIC``'s weights, then the guided filter with the
full-resolution L as the guide), merged with L. No post-hoc global colour draw, as
``cinn colorize``'s default.

Same steps as ``cinn colorize`` (``cinn.apps.colorization.infer.colorize``); for
``B = 1`` the bytes equal ``cinn colorize --seed SEED`` on the TensorFlow backend up to
float error: a flow of any size up to the rounding of values within float error of a
.5 boundary; the fixed-size flow up to 1 grey level in a small share of the values
(the resizes and the box filters as matrix products and pools in float32 here, in
OpenCV there; tests/test_export.py states the tolerance).
"""
import tensorflow as tf

from cinn.apps.colorization.color import merge_lab, split_lab
from cinn.apps.colorization.guided import EPS, RADIUS
from cinn.export import (check_sampling_args, pad_to_multiple, sample_with_seed,
                         stateless_latents, to_uint8)


def serving_functions(model, raw):
    """``{"colorize": tf.function}`` for a ``ColorizationINN``
    (``raw``: the raw signatures of ``cinn.export.raw_functions``)."""
    from cinn.apps.colorization.infer import working_size

    size = working_size(model)
    if size is not None:
        return {"colorize": _fixed_size_colorize(model, raw, size)}
    multiple = 2 ** model.num_down

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, None], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed")])
    def colorize(image, num_samples, temperature, seed):
        cond, h, w = _condition(image, num_samples, temperature)
        ab, _ = sample_with_seed(model, raw["sample"], pad_to_multiple(cond, multiple),
                                 num_samples, temperature, seed)
        ab = ab[:, :, :h, :w]                                 # [B, N, H, W, 2]
        return {"colorized": _merge(cond, ab)}

    return {"colorize": colorize}


def _condition(image, num_samples, temperature):
    """Scaled L [B, H, W, 1] of a uint8 batch (1, 3 or 4 channels), checked, and H, W."""
    shape = tf.shape(image)
    checks = check_sampling_args(num_samples, temperature) + [
        tf.debugging.Assert(
            (shape[3] == 1) | (shape[3] == 3) | (shape[3] == 4),
            ["image must have 1, 3 or 4 channels, got", shape[3]]),
        tf.debugging.Assert(tf.minimum(shape[1], shape[2]) >= 2,
                            ["image must be at least 2x2 pixels, got", shape[1:3]])]
    with tf.control_dependencies(checks):
        rgb = tf.cond(shape[3] == 1, lambda: tf.tile(image, [1, 1, 1, 3]),
                      lambda: image[..., :3])
    cond, _ = split_lab(rgb)                                  # [B, H, W, 1], L/50 - 1
    return cond, shape[1], shape[2]


def _merge(cond, ab):
    """uint8 RGB [B, N, H, W, 3] of L [B, H, W, 1] and ab [B, N, H, W, 2]."""
    cond_n = tf.broadcast_to(cond[:, None], tf.concat([tf.shape(ab)[:-1], [1]], 0))
    return to_uint8(merge_lab(cond_n, ab))


def _fixed_size_colorize(model, raw, size):
    from cinn.apps.colorization.infer import latent_scale

    # which latents are global (a constant of the model): their scale is 1, the others' 0
    is_global = tf.constant(latent_scale(model, (size, size, 2), 1.0, 0.0) > 0.5)
    dims = size * size * 2

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, None], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.float32, name="local_temperature"),
        tf.TensorSpec([], tf.int64, name="seed")])
    def colorize(image, num_samples, temperature, local_temperature, seed):
        with tf.control_dependencies(check_sampling_args(num_samples, local_temperature)):
            cond, h, w = _condition(image, num_samples, temperature)
        bsz = tf.shape(cond)[0]
        small = shrink(cond, size)                            # [B, size, size, 1]
        z = tf.reshape(stateless_latents(bsz * num_samples, dims, seed),
                       [bsz, num_samples, dims])
        z = z * tf.where(is_global, temperature, local_temperature)
        ab = raw["sample"](small, z, tf.constant(1.0))["x"]   # [B, N, size, size, 2]
        ab = guided_upsample(ab, cond)                        # [B, N, H, W, 2]
        return {"colorized": _merge(cond, ab)}

    return colorize


# -- the resizes and the guided filter of guided.py, in TensorFlow ------------------------
def _taps_matrix(indices, weights, src):
    """[dst, src] float32: row ``i`` holds ``weights[k][i]`` at ``indices[k][i]`` (summed)."""
    return tf.add_n([tf.one_hot(i, src, dtype=tf.float32) * w[:, None]
                     for i, w in zip(indices, weights)])


def _area_down(src, dst):
    """``cv2.INTER_AREA`` weights [dst, src] when shrinking (``src >= dst``): each output
    pixel the average of the input over its box, partial pixels by their overlap."""
    scale = tf.cast(src, tf.float64) / tf.cast(dst, tf.float64)
    lo = tf.cast(tf.range(dst), tf.float64)[:, None] * scale
    j = tf.cast(tf.range(src), tf.float64)[None, :]
    overlap = tf.minimum(lo + scale, j + 1.0) - tf.maximum(lo, j)
    return tf.cast(tf.maximum(overlap, 0.0) / scale, tf.float32)


def _area_up(src, dst):
    """``cv2.INTER_AREA`` weights [dst, src] when an axis grows (OpenCV's linear
    interpolation with area coefficients, both axes)."""
    scale = tf.cast(src, tf.float64) / tf.cast(dst, tf.float64)
    inv = tf.cast(dst, tf.float64) / tf.cast(src, tf.float64)
    d = tf.cast(tf.range(dst), tf.float64)
    sx = tf.floor(d * scale)
    fx = tf.cast((d + 1.0) - (sx + 1.0) * inv, tf.float32)
    fx = tf.where(fx <= 0.0, 0.0, fx - tf.floor(fx))
    sx = tf.cast(sx, tf.int32)
    last = tf.cast(src, tf.int32) - 1
    fx = tf.where(sx >= last, 0.0, fx)
    sx = tf.minimum(sx, last)
    return _taps_matrix([sx, tf.minimum(sx + 1, last)], [1.0 - fx, fx], src)


def _cubic(src, dst):
    """``cv2.INTER_CUBIC`` weights [dst, src] (Keys, A = -0.75, half-pixel centres,
    indices clamped at the borders)."""
    a = -0.75
    scale = tf.cast(src, tf.float64) / tf.cast(dst, tf.float64)
    f = tf.cast((tf.cast(tf.range(dst), tf.float64) + 0.5) * scale - 0.5, tf.float32)
    sx = tf.floor(f)
    x = f - sx
    c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    c1 = ((a + 2) * x - (a + 3)) * x * x + 1
    c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    c3 = 1 - c0 - c1 - c2
    sx = tf.cast(sx, tf.int32)
    last = tf.cast(src, tf.int32) - 1
    taps = [tf.clip_by_value(sx + k, 0, last) for k in (-1, 0, 1, 2)]
    return _taps_matrix(taps, [c0, c1, c2, c3], src)


def shrink(cond, size):
    """Scaled L [B, H, W, 1] -> [B, size, size, 1] as ``guided.shrink_l`` (``cv2.resize``,
    ``INTER_AREA``)."""
    h, w = tf.shape(cond)[1], tf.shape(cond)[2]
    down = (h >= size) & (w >= size)
    wy = tf.cond(down, lambda: _area_down(h, size), lambda: _area_up(h, size))
    wx = tf.cond(down, lambda: _area_down(w, size), lambda: _area_up(w, size))
    return tf.einsum("yh,bhwc,xw->byxc", wy, cond, wx)


def _box(x, radius):
    """Mean over ``(2 radius + 1)``-pixel windows of [B, H, W, C], edges mirrored as
    ``cv2.BORDER_REFLECT`` (``fedcba|abcdef``)."""
    k = 2 * radius + 1
    x = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    return tf.nn.avg_pool2d(x, k, 1, "VALID")


def guided_upsample(ab, l_full, radius=RADIUS, eps=EPS):
    """ab [B, N, h, w, C] -> [B, N, H, W, C] at the size of L ``l_full`` [B, H, W, 1]:
    bicubic, then the guided filter by ``l_full`` (``guided.guided_upsample``)."""
    shape = tf.shape(ab)
    bsz, n, h, w, ch = shape[0], shape[1], shape[2], shape[3], shape[4]
    big_h, big_w = tf.shape(l_full)[1], tf.shape(l_full)[2]
    up = tf.einsum("yh,bnhwc,xw->bnyxc", _cubic(h, big_h), ab, _cubic(w, big_w))
    g = l_full
    mean_g = _box(g, radius)
    var_g = _box(g * g, radius) - mean_g ** 2
    # the samples of one image side by side in the channels: one box filter for all
    p = tf.reshape(tf.transpose(up, [0, 2, 3, 1, 4]), [bsz, big_h, big_w, n * ch])
    mean_p = _box(p, radius)
    a = (_box(g * p, radius) - mean_g * mean_p) / (var_g + eps)
    b = mean_p - a * mean_g
    out = _box(a, radius) * g + _box(b, radius)
    return tf.transpose(tf.reshape(out, [bsz, big_h, big_w, n, ch]), [0, 3, 1, 2, 4])

