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
from cinn.apps.common.tiling import TILE_PIXELS, decode_strips, strip_features, unet_in_strips
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
    filled = refine_fill(StripFill.of(getattr(model, "fill_net", None)), filled[None],
                         m[None])[0]
    c = make_condition(filled, m)[None]
    known = filled[:h, :w]
    # bit_stable: the apps' promise, sample k the same bytes whatever N and the chunks
    for residual in model.sample_chunks(c, n=n, temperature=temperature, seed=seed,
                                        batch_size=batch_size, bit_stable=True,
                                        features=strip_features(model, c),
                                        strips=decode_strips(model, c)):
        for one in ops.convert_to_numpy(residual)[:, :h, :w]:
            yield np.where(mask[:, :, None], from_flow(one + known), rgb)


class StripFill:
    """The inpainting model's ``fill_net`` (an ``InpaintingRegressor``) whose
    ``predict_residual`` runs its U-Net in strips (``tiling.unet_in_strips``) on
    inputs of more than ``4 * min_pixels`` pixels: memory for a strip, not for the
    photo; the prediction is the one pass's up to float rounding. What
    ``refine_fill`` calls on a large hole of a large photo."""

    def __init__(self, net, min_pixels=TILE_PIXELS, rows=None):
        self.net, self.min_pixels, self.rows = net, int(min_pixels), rows

    @classmethod
    def of(cls, net):
        """``StripFill(net)``; ``None`` for no net, and ``net`` itself when it is not
        the U-Net regressor this class knows how to split."""
        if net is None or type(getattr(net, "cond_net", None)).__name__ != "UNetConditionNet":
            return net
        return cls(net)

    def predict_residual(self, c):
        """``net.predict_residual(c)`` for conditions c (B, H, W, 4), as NumPy."""
        from keras import ops

        from cinn.conditioning import depth_to_space, space_to_depth

        c = np.asarray(c, np.float32)
        if c.shape[1] * c.shape[2] <= 4 * self.min_pixels:
            return ops.convert_to_numpy(self.net.predict_residual(c))
        out = []
        for one in c:   # as InpaintingRegressor.predict_residual, the U-Net in strips
            x = ops.convert_to_numpy(space_to_depth(ops.convert_to_tensor(one[None])))
            h = unet_in_strips(self.net.cond_net, x, rows=self.rows)[0]
            out.append(ops.convert_to_numpy(depth_to_space(ops.convert_to_tensor(h)))[0]
                       * one[..., 3:])
        return np.stack(out)


def masked_view(rgb, mask, fill=(255, 255, 255)):
    """The input as the model sees it, for pictures: the hole painted ``fill``."""
    out = np.array(rgb, copy=True)
    out[mask] = fill
    return out
