"""Conditional affine couplings (RealNVP / Glow) with soft clamping: today's channel
split (``AffineCoupling``) and the one with RealNVP's masks (``MaskedAffineCoupling``)."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, soft_clamp, split_channels, sum_except_batch
from cinn.blocks.masks import MaskedCoupling
from cinn.subnets import AffineParams, check_subnet, concat_condition, subnet_config


@keras.saving.register_keras_serializable(package="cinn")
class AffineCoupling(InvertibleLayer):
    """Split channels ``x = [x1, x2]``; ``y2 = x2 * exp(s) + t`` with
    ``(s, t) = subnet([x1, c])`` and ``s`` soft-clamped to ``(-clamp, clamp)``.

    ``x1`` passes unchanged, so the map is invertible whatever the subnet is. The
    subnet's last layer is zero-initialised: a new block is the identity.
    Precede couplings with a permutation or 1x1 convolution so every channel
    gets transformed.
    """

    uses_condition = True

    def __init__(self, subnet=None, clamp=2.0, **kwargs):
        super().__init__(**kwargs)
        self._subnet_arg = check_subnet(subnet)
        self.clamp = float(clamp)
        self.params = None

    def build(self, x_shape, c_shape=None):
        channels = x_shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"{self.name}: coupling needs at least 2 channels, got {channels}")
        self.split_at = channels // 2
        self.params = AffineParams(channels - self.split_at, self._subnet_arg, self.clamp,
                                   name="params")
        super().build(x_shape, c_shape)

    def _st(self, x1, c):
        return self.params(concat_condition(x1, c))

    def _forward(self, x, c):
        x1, x2 = split_channels(x, self.split_at)
        s, t = self._st(x1, c)
        y2 = x2 * ops.exp(s) + t
        return ops.concatenate([x1, y2], axis=-1), sum_except_batch(s)

    def _inverse(self, y, c):
        y1, y2 = split_channels(y, self.split_at)
        s, t = self._st(y1, c)
        x2 = (y2 - t) * ops.exp(-s)
        return ops.concatenate([y1, x2], axis=-1), -sum_except_batch(s)

    def get_config(self):
        return {**super().get_config(), "subnet": subnet_config(self._subnet_arg),
                "clamp": self.clamp}


@keras.saving.register_keras_serializable(package="cinn")
class MaskedAffineCoupling(MaskedCoupling):
    """The affine coupling with RealNVP's masks (Dinh et al. 2017, "Density
    estimation using Real NVP"): ``y = m * x + (1 - m) * (x * exp(s) + t)`` with
    ``(s, t) = subnet([x * m, c])``, ``s`` soft-clamped to ``(-clamp, clamp)``;
    log-det ``sum((1 - m) * s)``.

    ``mask="checkerboard"`` (a spatial checkerboard for images, alternating features
    for vectors) or ``"channel"`` (a channel split); ``parity`` 0 or 1 picks the
    half that is transformed: alternate it between consecutive blocks. See
    ``cinn.blocks.masks``. With ``mask="channel", parity=0`` this is the map of
    ``AffineCoupling`` (which stays a class of its own: saved models and the fused
    backward step of ``cinn.reversible`` depend on its exact layout).
    Zero-initialised: a new block is the identity.
    """

    params_per_element = 2

    def __init__(self, subnet=None, clamp=2.0, mask="channel", parity=0, **kwargs):
        super().__init__(subnet, mask=mask, parity=parity, **kwargs)
        self.clamp = float(clamp)

    def _transform(self, x, h, inverse):
        s, t = split_channels(h, x.shape[-1])
        s = soft_clamp(s, self.clamp)
        if inverse:
            return (x - t) * ops.exp(-s), -s
        return x * ops.exp(s) + t, s

    def get_config(self):
        return {**super().get_config(), "clamp": self.clamp}
