"""Inpainting with a trained model: ``inpaint(model, rgb, mask, n, temperature, seed)``.

Any image size (padded to the flow's multiple, cropped back). Every known pixel
(``mask == False``) of every output is copied from the input, so it is
bit-identical to it. Special masks:

* empty mask (nothing missing): the input is returned ``n`` times, with an
  ``InpaintingNotice`` warning;
* full mask (nothing known): the completions are samples of the model with an
  all-missing condition (unconditional guesses), with an ``InpaintingNotice`` warning.
"""
import warnings

import numpy as np

from cinn.apps.common.images import pad_to_multiple
from cinn.apps.common.tiling import decode_strips, strip_features
from cinn.apps.inpainting import DEFAULT_TEMPERATURE
from cinn.apps.inpainting.model import fill_hole, from_flow, make_condition, refine_fill, to_flow
from cinn.errors import CinnError
from cinn.sampling import check_sampling


class InpaintingNotice(UserWarning):
    """A defined but special case (empty or full mask)."""


def check_inputs(rgb, mask):
    """Validate and normalise: uint8 (H, W, 3) image (greyscale (H, W) is
    repeated) and a bool (H, W) mask of the same size."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise CinnError(f"image must have shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise CinnError(f"image must be uint8, got {rgb.dtype}")
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
        mask = mask[..., :3].max(axis=2)
    if mask.shape != rgb.shape[:2]:
        raise CinnError(f"mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} "
                        f"pixels but the image is {rgb.shape[1]}x{rgb.shape[0]}; they must "
                        "have the same size")
    return rgb, mask.astype(bool)


def inpaint(model, rgb, mask, n=8, temperature=DEFAULT_TEMPERATURE, seed=0, batch_size=None):
    """``n`` completions of ``rgb`` (uint8 (H, W, 3)) where ``mask`` (bool (H, W),
    ``True`` = missing) is set: uint8 array (n, H, W, 3).

    Same model, inputs and ``seed`` -> identical output. Pixels outside the mask
    equal the input exactly.
    """
    return np.stack(list(iter_inpaint(model, rgb, mask, n, temperature, seed, batch_size)))


def iter_inpaint(model, rgb, mask, n=8, temperature=DEFAULT_TEMPERATURE, seed=0,
                 batch_size=None):
    """The completions of ``inpaint`` one at a time (uint8 (H, W, 3)), as they are
    drawn: memory for one chunk of samples, not ``n``. The notices of special
    masks are warned when the first completion is asked for."""
    rgb, mask = check_inputs(rgb, mask)
    n, temperature, seed = check_sampling(n, temperature, seed)
    if not mask.any():
        warnings.warn("the mask is empty (nothing is missing): returning the input unchanged",
                      InpaintingNotice, stacklevel=2)
        for _ in range(n):
            yield rgb.copy()
        return
    if mask.all():
        warnings.warn("the mask covers the whole image (nothing is known): the completions "
                      "are unconditional samples of the model", InpaintingNotice, stacklevel=2)
    from keras import ops  # keras (and TensorFlow) only once a model samples

    h, w = mask.shape
    mult = 2 ** model.num_down
    filled, _ = pad_to_multiple(to_flow(fill_hole(rgb, mask)), mult)
    m, _ = pad_to_multiple(mask, mult)
    filled = refine_fill(getattr(model, "fill_net", None), filled[None], m[None])[0]
    c = make_condition(filled, m)[None]
    known = filled[:h, :w]
    for residual in model.sample_chunks(c, n=n, temperature=temperature, seed=seed,
                                        batch_size=batch_size,
                                        features=strip_features(model, c),
                                        strips=decode_strips(model, c)):
        for one in ops.convert_to_numpy(residual)[:, :h, :w]:
            yield np.where(mask[:, :, None], from_flow(one + known), rgb)


def masked_view(rgb, mask, fill=(255, 255, 255)):
    """The input as the model sees it, for pictures: the hole painted ``fill``."""
    out = np.array(rgb, copy=True)
    out[mask] = fill
    return out
