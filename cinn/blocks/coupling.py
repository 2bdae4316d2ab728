"""Conditional affine coupling (RealNVP / Glow) with soft clamping."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, split_channels, sum_except_batch
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
