"""Multi-scale split: factor half of the channels out to the latent."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, split_channels, sum_except_batch, zeros_per_sample
from cinn.subnets import AffineParams, check_subnet, concat_condition, subnet_config


@keras.saving.register_keras_serializable(package="cinn")
class Split(InvertibleLayer):
    """``x = [x1, x2] -> y = [x1, z2]``: ``x1`` (the first ``keep`` channels) flows on,
    ``z2`` goes to the latent. The model takes ``y`` apart with ``separate`` and puts
    it back together with ``join``; the block itself follows the one contract of
    every block (a bijection of one tensor onto one of the same shape).

    Without a prior ``z2 = x2`` (log-det 0). With ``prior=True`` the factored half
    gets a learned conditional Gaussian prior (SRFlow):
    ``z2 = (x2 - mu) * exp(-log_sigma)`` with ``(log_sigma, mu) = subnet([x1, c])``,
    zero-initialised (a standard normal at first) and soft-clamped, so ``z2`` is
    standard normal when the prior fits.
    """

    uses_condition = True
    factors_out = True

    def __init__(self, prior=False, subnet=None, clamp=2.0, **kwargs):
        super().__init__(**kwargs)
        self.prior = bool(prior)
        self._subnet_arg = check_subnet(subnet)
        self.clamp = float(clamp)
        self.params = None

    def build(self, x_shape, c_shape=None):
        channels = x_shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"{self.name}: split needs at least 2 channels, got {channels}")
        self.keep = channels - channels // 2
        if self.prior:
            self.params = AffineParams(channels - self.keep, self._subnet_arg, self.clamp,
                                       name="params")
        super().build(x_shape, c_shape)

    def separate(self, y):
        """``y -> (kept, z)``: the half that flows on, the half for the latent."""
        return split_channels(y, self.keep)

    def join(self, kept, z):
        """``(kept, z) -> y``, the inverse of ``separate``."""
        return ops.concatenate([kept, z], axis=-1)

    def _forward(self, x, c):
        if not self.prior:
            return x, zeros_per_sample(x)
        x1, x2 = self.separate(x)
        log_sigma, mu = self.params(concat_condition(x1, c))
        return self.join(x1, (x2 - mu) * ops.exp(-log_sigma)), -sum_except_batch(log_sigma)

    def _inverse(self, y, c):
        if not self.prior:
            return y, zeros_per_sample(y)
        x1, z2 = self.separate(y)
        log_sigma, mu = self.params(concat_condition(x1, c))
        return self.join(x1, z2 * ops.exp(log_sigma) + mu), sum_except_batch(log_sigma)

    def get_config(self):
        return {**super().get_config(), "prior": self.prior,
                "subnet": subnet_config(self._subnet_arg), "clamp": self.clamp}
