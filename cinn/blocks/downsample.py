"""Resolution changes that trade space for channels, exactly invertible."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, zeros_per_sample


class _Downsample2x(InvertibleLayer):
    """(B, H, W, C) <-> (B, H/2, W/2, 4C); height and width must be even."""

    def forward_shape(self, x_shape):
        if len(x_shape) != 4:
            return tuple(x_shape)  # not an image: _check_inputs says so
        b, h, w, ch = x_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2,
                None if ch is None else 4 * ch)

    def inverse_shape(self, y_shape):
        if len(y_shape) != 4:
            return tuple(y_shape)
        b, h, w, ch = y_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w,
                None if ch is None else ch // 4)

    def _check_inputs(self, x, c, inverse=False):
        shape = tuple(x.shape)
        if len(shape) != 4:
            raise ValueError(f"{self.name}: expected an image batch (batch, H, W, C), got {shape}")
        if not inverse:
            for d in shape[1:3]:
                if d is not None and d % 2:
                    raise ValueError(
                        f"{self.name}: height and width must be even, got {shape}; "
                        "pad the input to a multiple of 2**(number of downsamplings)")
        elif shape[-1] is not None and shape[-1] % 4:
            raise ValueError(f"{self.name}: the inverse needs a multiple of 4 channels, "
                             f"got {shape}")
        super()._check_inputs(x, c, inverse)


def _space_to_depth(x):
    """(B, H, W, C) -> (B, H/2, W/2, 4C), the channel blocks the top-left,
    top-right, bottom-left and bottom-right pixel of each 2x2 cell. One reshape,
    transpose, reshape: its gradient is the same (strided slices' gradients would
    each pad a zero tensor of the full size)."""
    bsz, h, w, ch = ops.shape(x)
    y = ops.reshape(x, (bsz, h // 2, 2, w // 2, 2, ch))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (bsz, h // 2, w // 2, 4 * ch))


def _depth_to_space(y):
    """Inverse of ``_space_to_depth``."""
    bsz, h, w, ch4 = ops.shape(y)
    x = ops.reshape(y, (bsz, h, w, 2, 2, ch4 // 4))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (bsz, 2 * h, 2 * w, ch4 // 4))


@keras.saving.register_keras_serializable(package="cinn")
class Squeeze(_Downsample2x):
    """Space-to-depth: (B, H, W, C) -> (B, H/2, W/2, 4C), channel blocks ordered
    top-left, top-right, bottom-left, bottom-right. A permutation: log-det 0."""

    def _forward(self, x, c):
        return _space_to_depth(x), zeros_per_sample(x)

    def _inverse(self, y, c):
        return _depth_to_space(y), zeros_per_sample(y)


@keras.saving.register_keras_serializable(package="cinn")
class HaarDownsample(_Downsample2x):
    """Orthonormal 2D Haar wavelet: (B, H, W, C) -> (B, H/2, W/2, 4C) as
    [low-pass, horizontal, vertical, diagonal] detail blocks. Orthonormal, so
    log-det 0; the low-pass block comes first and is what a later split keeps."""

    def _forward(self, x, c):
        a, b, cc, d = ops.split(_space_to_depth(x), 4, axis=-1)
        ll = (a + b + cc + d) * 0.5
        lh = (a - b + cc - d) * 0.5
        hl = (a + b - cc - d) * 0.5
        hh = (a - b - cc + d) * 0.5
        return ops.concatenate([ll, lh, hl, hh], axis=-1), zeros_per_sample(x)

    def _inverse(self, y, c):
        ll, lh, hl, hh = ops.split(y, 4, axis=-1)
        a = (ll + lh + hl + hh) * 0.5
        b = (ll - lh + hl - hh) * 0.5
        cc = (ll + lh - hl - hh) * 0.5
        d = (ll - lh - hl + hh) * 0.5
        return _depth_to_space(ops.concatenate([a, b, cc, d], axis=-1)), zeros_per_sample(y)
