"""SRFlow's conditional affine injector: an affine map of all channels whose
scale and shift depend on the condition only."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, sum_except_batch
from cinn.subnets import AffineParams, check_subnet, subnet_config


@keras.saving.register_keras_serializable(package="cinn")
class AffineInjector(InvertibleLayer):
    """``y = x * exp(s(c)) + t(c)`` on every channel, ``s`` soft-clamped.

    Because ``s`` and ``t`` see only the condition, the block is invertible
    for any subnet; zero-initialised, so a new block is the identity.
    """

    requires_condition = True

    def __init__(self, subnet=None, clamp=2.0, **kwargs):
        super().__init__(**kwargs)
        self._subnet_arg = check_subnet(subnet)
        self.clamp = float(clamp)
        self.params = None

    def build(self, x_shape, c_shape=None):
        if c_shape is None:
            raise ValueError(f"{self.name}: the injector needs a condition `c`, got None")
        self.params = AffineParams(x_shape[-1], self._subnet_arg, self.clamp, name="params")
        super().build(x_shape, c_shape)

    def _forward(self, x, c):
        s, t = self.params(ops.cast(c, x.dtype))
        return x * ops.exp(s) + t, sum_except_batch(s)

    def _inverse(self, y, c):
        s, t = self.params(ops.cast(c, y.dtype))
        return (y - t) * ops.exp(-s), -sum_except_batch(s)

    def get_config(self):
        return {**super().get_config(), "subnet": subnet_config(self._subnet_arg),
                "clamp": self.clamp}
