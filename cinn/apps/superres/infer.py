"""Upscaling with a trained ``SuperResINN``: any LR size, exact LR-consistency."""
import numpy as np

from cinn.apps.common.images import pad_to_multiple
from cinn.apps.common.pretrained import load_model
from cinn.apps.common.tiling import decode_strips, strip_features
from cinn.apps.superres import DEFAULT_TEMPERATURE
from cinn.apps.superres.consistent import from_details, to_unit
from cinn.apps.superres.resize import to_uint8, upscale as bicubic_upscale
from cinn.errors import CinnError
from cinn.sampling import check_sampling



def load(weights=None, scale=4):
    """The ``scale``x model: ``weights`` (a ``.keras`` file or run folder), default the
    shipped one; ``CinnError`` when it upscales by another factor."""
    model = load_model("superres", weights, variant=None if scale == 4 else f"x{scale}")
    if model.scale != scale:
        raise CinnError(f"the model upscales {model.scale}x, not {scale}x "
                        f"(pass --scale {model.scale} or other --weights)")
    return model


def check_lr(rgb):
    """A uint8 (h, w, 3) LR image (greyscale (h, w) gets three channels); one-line
    ``CinnError`` for anything else, e.g. a 1-pixel image."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise CinnError(f"expected an RGB image of shape (h, w, 3), got {rgb.shape}")
    if min(rgb.shape[:2]) < 2:
        raise CinnError(f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels; super-resolution "
                        "needs at least 2x2")
    if rgb.dtype != np.uint8:
        raise CinnError(f"expected a uint8 image, got {rgb.dtype}")
    return rgb


def upscale_float(model, rgb_uint8, n=4, temperature=DEFAULT_TEMPERATURE, seed=0,
                  batch_size=None):
    """``n`` samples of the HR image, float in [0, 255] units before rounding,
    shape (n, s*h, s*w, 3); ``D(sample) == LR`` up to float rounding.

    The LR is padded (reflection) to the multiple the flow needs; the detail
    coefficients belonging to the padding are dropped before the HR image is
    built, so the output is exactly s times the input size.
    """
    return np.stack(list(iter_upscale_float(model, rgb_uint8, n, temperature, seed,
                                            batch_size)))


def iter_upscale_float(model, rgb_uint8, n=4, temperature=DEFAULT_TEMPERATURE, seed=0,
                       batch_size=None):
    """The samples of ``upscale_float`` one at a time (float64 (s*h, s*w, 3)), as
    they are drawn: memory for one chunk of samples, not ``n``."""
    from keras import ops  # keras (and TensorFlow) only once a model samples

    lr = check_lr(rgb_uint8)
    n, temperature, seed = check_sampling(n, temperature, seed)
    h, w = lr.shape[:2]
    padded, _ = pad_to_multiple(lr, 2 ** model.num_down)
    c = to_unit(padded)[None]
    lr_unit = to_unit(lr)[None].astype(np.float64)
    # bit_stable: the apps' promise, sample k the same bytes whatever N and the chunks
    for det in model.sample_chunks(c, n=n, temperature=temperature, seed=seed,
                                   batch_size=batch_size, bit_stable=True,
                                   features=strip_features(model, c),
                                   strips=decode_strips(model, c)):
        det = np.asarray(ops.convert_to_numpy(det))[:, :h, :w]
        for one in det:
            x = from_details(one[None], lr_unit, model.scale, base=model.base)[0]
            x += 0.5
            x *= 255.0
            yield x


def upscale(model, rgb_uint8, n=4, temperature=DEFAULT_TEMPERATURE, seed=0, batch_size=None):
    """``n`` super-resolved samples of an LR uint8 RGB image: (n, s*h, s*w, 3) uint8.
    ``temperature=0`` gives the mode-like output (all samples equal)."""
    return to_uint8(upscale_float(model, rgb_uint8, n, temperature, seed, batch_size))


def bicubic(rgb_uint8, scale):
    """The bicubic baseline (MATLAB ``imresize``), uint8."""
    return to_uint8(bicubic_upscale(np.asarray(rgb_uint8, np.float64), scale))
