"""Multi-scale split: factor half of the channels out to the latent."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, sum_except_batch, zeros_per_sample
from cinn.subnets import AffineParams, concat_condition, subnet_config


@keras.saving.register_keras_serializable(package="cinn")
class Split(InvertibleLayer):
    """Forward: ``x -> ((x1, z2), log_det)``; ``x1`` (the first half of the
    channels) flows on, ``z2`` goes to the latent. Inverse: ``(x1, z2) -> x``.

    With ``prior=True`` the factored half gets a learned conditional Gaussian
    prior (SRFlow): ``z2 = (x2 - mu) * exp(-log_sigma)`` with
    ``(log_sigma, mu) = subnet([x1, c])``, zero-initialised (a standard normal
    at first) and soft-clamped, so ``z2`` is standard normal when the prior fits.
    """

    uses_condition = True

    def __init__(self, prior=False, subnet=None, clamp=2.0, **kwargs):
        super().__init__(**kwargs)
        self.prior = bool(prior)
        self._subnet_arg = subnet
        self.clamp = float(clamp)
        self.params = None

    def build(self, x_shape, c_shape=None):
        if isinstance(x_shape, (list, tuple)) and isinstance(x_shape[0], (list, tuple)):
            # built by an inverse call: ((x1 shape), (z2 shape))
            x_shape = tuple(x_shape[0][:-1]) + (x_shape[0][-1] + x_shape[1][-1],)
        channels = x_shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"{self.name}: split needs at least 2 channels, got {channels}")
        self.keep = channels - channels // 2
        if self.prior:
            self.params = AffineParams(channels - self.keep, self._subnet_arg, self.clamp,
                                       name="params")
        super().build(x_shape, c_shape)

    def call(self, x, c=None, inverse=False):
        if inverse:
            x1, z2 = x
            self._check_inputs(ops.concatenate([x1, z2], axis=-1), c)
            return self._inverse((x1, z2), c)
        self._check_inputs(x, c)
        return self._forward(x, c)

    def _forward(self, x, c):
        x1, x2 = x[..., : self.keep], x[..., self.keep:]
        if not self.prior:
            return (x1, x2), zeros_per_sample(x)
        log_sigma, mu = self.params(concat_condition(x1, c))
        return (x1, (x2 - mu) * ops.exp(-log_sigma)), -sum_except_batch(log_sigma)

    def _inverse(self, y, c):
        x1, z2 = y
        if not self.prior:
            return ops.concatenate([x1, z2], axis=-1), zeros_per_sample(x1)
        log_sigma, mu = self.params(concat_condition(x1, c))
        x2 = z2 * ops.exp(log_sigma) + mu
        return ops.concatenate([x1, x2], axis=-1), sum_except_batch(log_sigma)

    def get_config(self):
        return {**super().get_config(), "prior": self.prior,
                "subnet": subnet_config(self._subnet_arg), "clamp": self.clamp}
