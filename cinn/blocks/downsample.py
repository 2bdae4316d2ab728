"""Resolution changes that trade space for channels, exactly invertible."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, zeros_per_sample


class _Downsample2x(InvertibleLayer):
    """Shared checks: NHWC input with even height and width."""

    def _check_inputs(self, x, c):
        shape = tuple(x.shape)
        if len(shape) != 4:
            raise ValueError(f"{self.name}: expected an image batch (batch, H, W, C), got {shape}")
        super()._check_inputs(x, c)

    def _check_even(self, x):
        for d in x.shape[1:3]:
            if d is not None and d % 2:
                raise ValueError(
                    f"{self.name}: height and width must be even, got {tuple(x.shape)}; "
                    "pad the input to a multiple of 2**(number of downsamplings)")

    def build(self, x_shape, c_shape=None):
        # the channel count of the inverse input differs from the forward one
        self.built = True


def _quads(x):
    return x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]


def _interleave(a, b, c, d):
    """Inverse of ``_quads``: place four (B, h, w, C) grids on a (B, 2h, 2w, C) one."""
    bsz, h, w, ch = ops.shape(a)[0], ops.shape(a)[1], ops.shape(a)[2], ops.shape(a)[3]
    top = ops.reshape(ops.stack([a, b], axis=3), (bsz, h, 2 * w, ch))
    bottom = ops.reshape(ops.stack([c, d], axis=3), (bsz, h, 2 * w, ch))
    return ops.reshape(ops.stack([top, bottom], axis=2), (bsz, 2 * h, 2 * w, ch))


@keras.saving.register_keras_serializable(package="cinn")
class Squeeze(_Downsample2x):
    """Space-to-depth: (B, H, W, C) -> (B, H/2, W/2, 4C), channel blocks ordered
    top-left, top-right, bottom-left, bottom-right. A permutation: log-det 0."""

    def _forward(self, x, c):
        self._check_even(x)
        return ops.concatenate(_quads(x), axis=-1), zeros_per_sample(x)

    def _inverse(self, y, c):
        ch = y.shape[-1] // 4
        parts = [y[..., i * ch:(i + 1) * ch] for i in range(4)]
        return _interleave(*parts), zeros_per_sample(y)


@keras.saving.register_keras_serializable(package="cinn")
class HaarDownsample(_Downsample2x):
    """Orthonormal 2D Haar wavelet: (B, H, W, C) -> (B, H/2, W/2, 4C) as
    [low-pass, horizontal, vertical, diagonal] detail blocks. Orthonormal, so
    log-det 0; the low-pass block comes first and is what a later split keeps."""

    def _forward(self, x, c):
        self._check_even(x)
        a, b, cc, d = _quads(x)
        ll = (a + b + cc + d) * 0.5
        lh = (a - b + cc - d) * 0.5
        hl = (a + b - cc - d) * 0.5
        hh = (a - b - cc + d) * 0.5
        return ops.concatenate([ll, lh, hl, hh], axis=-1), zeros_per_sample(x)

    def _inverse(self, y, c):
        ch = y.shape[-1] // 4
        ll, lh, hl, hh = (y[..., i * ch:(i + 1) * ch] for i in range(4))
        a = (ll + lh + hl + hh) * 0.5
        b = (ll - lh + hl - hh) * 0.5
        cc = (ll + lh - hl - hh) * 0.5
        d = (ll - lh - hl + hh) * 0.5
        return _interleave(a, b, cc, d), zeros_per_sample(y)
