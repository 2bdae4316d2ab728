"""Serving signatures of the inpainting app (``cinn export inpainting``; TensorFlow).

``inpaint(image uint8 [B, H, W, 3], mask uint8 [B, H, W] (non-zero = missing),
num_samples int32 [], temperature float32 [], seed int64 []) -> inpainted uint8 [B, N, H, W, 3]``

``inpaint_filled(image, mask, filled uint8 [B, H, W, 3], num_samples, temperature, seed)``
is the same with the hole pre-filled by the caller.

Same steps as ``cinn inpaint`` (``cinn.apps.inpainting.infer.inpaint``): the hole is
filled, image and mask are padded at the bottom/right to the flow's multiple
(reflection), condition = [filled image, mask], ``N`` samples of the residual
over the fill, cropped; every known pixel is copied from the input.

The command line fills the hole with OpenCV's Telea inpainting
(``cinn.apps.inpainting.model.fill_hole``), which a TensorFlow graph cannot run.
``inpaint`` fills it in the graph with ``fill_hole`` below, a fast-marching-like
approximation of Telea (a one-pixel layer per step, each pixel the inverse-
squared-distance weighted mean of the known pixels within radius 3), so its
output is close to, not identical with, the command line's. ``inpaint_filled``
with ``filled = fill_hole(image, mask)`` of ``cinn.apps.inpainting.model`` (i.e.
``cv2.inpaint(image, mask * 255, 3, cv2.INPAINT_TELEA)`` with known pixels kept)
gives, for ``B = 1``, the bytes of ``inpaint(..., seed=SEED)`` on the TensorFlow
backend (up to values within float error of a rounding boundary).
"""
import numpy as np
import tensorflow as tf

from cinn.export import check_sampling_args, pad_to_multiple, sample_with_seed, to_uint8

RADIUS = 3


def _weights(radius=RADIUS):
    """[2r+1, 2r+1, 1, 1] inverse squared distances within ``radius`` (centre 0)."""
    d = np.arange(-radius, radius + 1)
    d2 = (d[:, None] ** 2 + d[None, :] ** 2).astype("float32")
    w = np.where((d2 > 0) & (d2 <= radius ** 2), 1.0 / np.maximum(d2, 1.0), 0.0)
    return w[:, :, None, None].astype("float32")


def _conv(x, kernel):
    """Same-padded 2D convolution of every channel of ``x`` [B, H, W, C] with ``kernel``."""
    c = tf.shape(x)[-1]
    x = tf.transpose(x, [0, 3, 1, 2])[..., None]                       # [B, C, H, W, 1]
    shape = tf.shape(x)
    y = tf.nn.conv2d(tf.reshape(x, tf.concat([[-1], shape[2:]], 0)), kernel, 1, "SAME")
    y = tf.reshape(y, tf.concat([[shape[0], c], shape[2:4]], 0))
    return tf.transpose(y, [0, 2, 3, 1])


def fill_hole(image, missing):
    """Fill the ``missing`` pixels (float [B, H, W, 1], 1 = missing) of ``image``
    (uint8 [B, H, W, 3]) from the boundary inwards; uint8 out, known pixels kept,
    mid-grey (128) where an image has no known pixel (like ``model.fill_hole``)."""
    values = tf.cast(image, tf.float32)
    known = 1.0 - missing
    weights = tf.constant(_weights())
    ring = tf.ones([3, 3, 1, 1], tf.float32)

    def step(values, known, _):
        front = tf.cast((known < 0.5) & (_conv(known, ring) > 0.5), tf.float32)
        num = _conv(values * known, weights)
        den = _conv(known, weights)
        fill = num / tf.maximum(den, 1e-12)
        values = values + front * (fill - values)
        return values, tf.maximum(known, front), tf.reduce_any(front > 0)

    values, known, _ = tf.while_loop(lambda v, k, go: go, step,
                                     (values * known, known, tf.constant(True)))
    values = tf.where(known > 0.5, values, 128.0)
    filled = tf.cast(tf.clip_by_value(tf.round(values), 0.0, 255.0), tf.uint8)
    return tf.where(missing > 0.5, filled, image)


def serving_functions(model, raw):
    """``{"inpaint", "inpaint_filled"}`` tf.functions for an ``InpaintingINN``
    (``raw``: the raw signatures of ``cinn.export.raw_functions``)."""
    multiple = 2 ** model.num_down
    image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
    mask_spec = tf.TensorSpec([None, None, None], tf.uint8, name="mask")
    rest = [tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int64, name="seed")]

    def complete(image, missing, filled, num_samples, temperature, seed):
        shape = tf.shape(image)
        f = tf.cast(filled, tf.float32) / 255.0 - 0.5                      # to_flow
        f, m = pad_to_multiple(f, multiple), pad_to_multiple(missing, multiple)
        if getattr(model, "fill_net", None) is not None:  # the learned fill (regressor.py)
            f = tf.clip_by_value(f + model.fill_net.predict_residual(tf.concat([f, m], axis=-1)),
                                 -0.5, 0.5)
        residual, _ = sample_with_seed(model, raw["sample"], tf.concat([f, m], axis=-1),
                                       num_samples, temperature, seed)
        out = to_uint8((residual + f[:, None])[:, :, :shape[1], :shape[2]], offset=0.5)
        hole = tf.broadcast_to(missing[:, None] > 0.5, tf.shape(out))
        return {"inpainted": tf.where(hole, out, tf.broadcast_to(image[:, None],
                                                                 tf.shape(out)))}

    def missing_of(image, mask, num_samples, temperature):
        checks = check_sampling_args(num_samples, temperature) + [
            tf.debugging.assert_equal(tf.shape(mask), tf.shape(image)[:3], message=(
                "mask must have the image's batch, height and width"))]
        with tf.control_dependencies(checks):
            return tf.cast(mask > 0, tf.float32)[..., None]

    @tf.function(autograph=False, input_signature=[image_spec, mask_spec] + rest)
    def inpaint(image, mask, num_samples, temperature, seed):
        missing = missing_of(image, mask, num_samples, temperature)
        return complete(image, missing, fill_hole(image, missing), num_samples,
                        temperature, seed)

    @tf.function(autograph=False, input_signature=[
        image_spec, mask_spec, tf.TensorSpec([None, None, None, 3], tf.uint8, name="filled")]
        + rest)
    def inpaint_filled(image, mask, filled, num_samples, temperature, seed):
        missing = missing_of(image, mask, num_samples, temperature)
        filled = tf.where(missing > 0.5, filled, image)
        return complete(image, missing, filled, num_samples, temperature, seed)

    return {"inpaint": inpaint, "inpaint_filled": inpaint_filled}
