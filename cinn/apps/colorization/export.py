"""Serving signature of the colorization app (``cinn export colorization``; TensorFlow).

``colorize(image uint8 [B, H, W, 1|3|4], num_samples int32 [], temperature float32 [],
seed int64 []) -> colorized uint8 [B, N, H, W, 3]``

Same steps as ``cinn colorize`` (``cinn.apps.colorization.infer.colorize``): L of the
input (its colour is ignored, a 4th channel too), L padded at the bottom/right
to the flow's multiple (reflection), ``N`` ab samples, cropped, each mapped by its
global colour draw (the app's default ``--saturation`` and ``--hue``,
``cinn.apps.colorization.global_colour``), merged with L.
For ``B = 1`` the bytes equal ``cinn colorize --seed SEED`` on the TensorFlow
backend (up to the rounding of values within float error of a .5 boundary).
"""
import tensorflow as tf

from cinn.apps.colorization.defaults import DEFAULT_HUE, DEFAULT_SATURATION
from cinn.apps.colorization.color import merge_lab, split_lab
from cinn.apps.colorization.global_colour import global_draws, recolour
from cinn.export import check_sampling_args, pad_to_multiple, sample_with_seed, to_uint8


def serving_functions(model, raw):
    """``{"colorize": tf.function}`` for a ``ColorizationINN``
    (``raw``: the raw signatures of ``cinn.export.raw_functions``)."""
    multiple = 2 ** model.num_down

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, None], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed")])
    def colorize(image, num_samples, temperature, seed):
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
        cond, _ = split_lab(rgb)                              # [B, H, W, 1], L/50 - 1
        h, w = shape[1], shape[2]
        ab, _ = sample_with_seed(model, raw["sample"], pad_to_multiple(cond, multiple),
                                 num_samples, temperature, seed)
        ab = ab[:, :, :h, :w]                                 # [B, N, H, W, 2]
        ab = recolour(ab, *global_draws(num_samples, seed, DEFAULT_SATURATION, DEFAULT_HUE))
        cond_n = tf.broadcast_to(cond[:, None], tf.concat([tf.shape(ab)[:-1], [1]], 0))
        return {"colorized": to_uint8(merge_lab(cond_n, ab))}

    return {"colorize": colorize}
