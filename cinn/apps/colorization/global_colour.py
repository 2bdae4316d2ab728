"""One saturation factor and one hue rotation per image: ``ab -> s * R(angle) ab``.

How saturated the colours of a photo are, and their exact hue, cannot be told
from its lightness. The same map serves twice:

- training (``data.saturation`` / ``data.hue`` of the config): each crop's ab is
  scaled and rotated by its own random draw, so the flow learns to spread over
  saturation and hue instead of fitting BSDS's muted colours;
- sampling (``--saturation`` / ``--hue``, a creative option, off by default): sample
  ``i`` of a condition is mapped by draw ``i`` of ``global_draws``. A flow whose
  latents are all local (``model.keras``) has samples that differ locally; the
  global draw makes them differ as whole pictures too (one more saturated, one
  warmer, ...). The default flow (``colorization_global.keras``) draws its global
  colour itself, with its global latents; the post-hoc draws are then not needed.

Written with ``keras.ops``: the same code on NumPy, TensorFlow (the exported
SavedModel) and JAX. Keras is imported inside the functions that compute: the
command-line parsers import this module, and ``cinn --help`` should not wait for
Keras (nor import it before ``cinn`` sets XLA's flags).
"""
import math

from cinn.apps.colorization.defaults import (DEFAULT_HUE, DEFAULT_SATURATION, DRAW_HUE,
                                             DRAW_SATURATION)

#: Halton bases (saturation, hue) and the digits that cover sample indices < 2**14
_BASES = ((2, 14), (3, 9))
#: per-seed shift of the sequence (golden ratio and sqrt(2) - 1 times the seed)
_OFFSETS = (0.6180339887498949, 0.4142135623730951)


#: the largest saturation factor: ab scaled 10 times already pushes every colour to the
#: edge of the RGB gamut (larger ones overflow in the log-uniform draw)
MAX_SATURATION = 10.0


def check_saturation(saturation, name="saturation"):
    """``None`` or ``(lo, hi)`` with ``0 < lo <= hi <= MAX_SATURATION``, as floats."""
    if saturation is None:
        return None
    try:
        lo, hi = (float(v) for v in saturation)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not 0 < lo <= hi <= MAX_SATURATION:
        raise ValueError(f"{name} must be two numbers 0 < lo <= hi <= {MAX_SATURATION:g}, "
                         f"got {saturation!r}")
    return lo, hi


def check_hue(hue, name="hue"):
    """``None`` or the largest hue rotation in degrees, a float in ``[0, 180]``."""
    if hue is None:
        return None
    try:
        degrees = float(hue)
    except (TypeError, ValueError):
        degrees = float("nan")
    if not 0 <= degrees <= 180:
        raise ValueError(f"{name} must be a number of degrees in [0, 180], got {hue!r}")
    return degrees


def from_arguments(args):
    """``(saturation, hue)`` of a command's ``--saturation LO HI`` and ``--hue DEG``,
    checked: off (``(None, 0.0)``) unless given, one given alone leaves the other off
    (the app's defaults, ``defaults.DEFAULT_SATURATION``/``DEFAULT_HUE``); a
    ``CinnError`` names the option."""
    from cinn.errors import CinnError

    saturation = getattr(args, "saturation", None)
    hue = getattr(args, "hue", None)
    try:
        return (check_saturation(DEFAULT_SATURATION if saturation is None else tuple(saturation),
                                 "--saturation"),
                check_hue(DEFAULT_HUE if hue is None else hue, "--hue") or 0.0)
    except ValueError as err:
        raise CinnError(str(err)) from None


def add_arguments(parser, prefix=""):
    """``--saturation LO HI`` and ``--hue DEG`` (a command's global colour draws: a
    creative option, off unless given)."""
    lo, hi = DRAW_SATURATION
    parser.add_argument("--saturation", type=float, nargs=2, metavar=("LO", "HI"),
                        help=f"{prefix}post-hoc global colour draws: each sample's ab "
                        f"scaled by a factor log-uniform in [LO, HI] (default: off; "
                        f"{lo:g} {hi:g} is the former default)")
    parser.add_argument("--hue", type=float, metavar="DEG",
                        help=f"{prefix}post-hoc global colour draws: each sample's ab "
                        f"rotated by an angle uniform in [-DEG, DEG] degrees (default: "
                        f"off; {DRAW_HUE:g} is the former default)")


def is_identity(saturation, hue):
    """Whether ``saturation`` and ``hue`` (checked) change no colour."""
    return (saturation is None or saturation == (1.0, 1.0)) and not hue


def recolour(ab, scale, degrees):
    """``ab`` (..., H, W, 2) scaled by ``scale`` and rotated by ``degrees``, one value
    per image (arrays of shape ``ab.shape[:-3]``, or broadcastable to it)."""
    from keras import ops

    ab = ops.convert_to_tensor(ab)
    angle = ops.cast(degrees, ab.dtype) * (math.pi / 180.0)
    scale = ops.cast(scale, ab.dtype)
    cos = ops.expand_dims(ops.expand_dims(ops.cos(angle) * scale, -1), -1)
    sin = ops.expand_dims(ops.expand_dims(ops.sin(angle) * scale, -1), -1)
    a, b = ab[..., 0], ab[..., 1]
    return ops.stack([a * cos - b * sin, a * sin + b * cos], axis=-1)


def global_draws(n, seed, saturation, hue):
    """``(scale, degrees)``, float32 arrays of shape (n,): the global colour of samples
    ``0 .. n-1`` for an integer ``seed``. The scale is log-uniform in ``saturation``
    (``(lo, hi)``), the angle uniform in ``[-hue, hue]`` degrees: each sample's draw has
    that distribution, and the draws of one seed are spread evenly (a Halton sequence
    in bases 2 and 3, shifted by a seed-dependent offset modulo 1: for N a power of
    two, each of N equal parts of the log-saturation range holds one sample), so N
    samples cover the range instead of clustering. Sample ``i``'s draw depends on
    ``seed`` and ``i`` only (at most 2**14 samples).
    """
    from keras import ops

    lo, hi = saturation or (1.0, 1.0)
    k = ops.arange(n)
    start = ops.cast(ops.mod(seed, 65536) + 1, "float32")
    u = [_frac(_radical_inverse(k, base, digits) + start * off)
         for (base, digits), off in zip(_BASES, _OFFSETS)]
    scale = ops.exp(math.log(lo) + u[0] * (math.log(hi) - math.log(lo)))
    return scale, (2.0 * u[1] - 1.0) * float(hue or 0.0)


def _radical_inverse(k, base, digits):
    """The base-``base`` digits of the integers ``k`` mirrored behind the point."""
    from keras import ops

    u = ops.zeros(ops.shape(k), "float32")
    weight = 1.0
    for _ in range(digits):
        weight /= base
        u = u + ops.cast(ops.mod(k, base), "float32") * weight
        k = ops.floor_divide(k, base)
    return u


def _frac(x):
    from keras import ops

    return x - ops.floor(x)
