"""RealNVP's masks and the coupling base class that applies them.

Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP": a
binary mask ``m`` splits ``x`` into a part that passes unchanged and conditions a
subnet, and a part that an elementwise invertible map transforms, with parameters
predicted by the subnet. Whatever the subnet, the block is invertible.

* ``mask="channel"``: ``C // 2`` channels condition, the other ``C - C // 2`` are
  transformed. Parity 0 transforms the last channels (as ``AffineCoupling``), parity
  1 the first ones: consecutive blocks of alternating parity swap the halves.
* ``mask="checkerboard"``: for images, ``m = 1`` on the spatial positions with
  ``(row + col + parity)`` even (all channels of a position together); for vectors,
  on the features with ``(index + parity)`` even. The subnet sees ``x * m`` (images:
  with ``m`` as one more channel, so a convolution knows which positions it reads),
  and the other positions are transformed: ``y = m * x + (1 - m) * f(x)``; the
  log-det sums over the transformed positions only. Parity 1 is the complementary
  mask.

``MaskedCoupling`` holds this plumbing for every coupling with a subnet; a
subclass says how many parameters it needs per transformed element
(``params_per_element``) and implements the elementwise map ``_transform``.
"""
from keras import ops

from cinn.blocks.base import InvertibleLayer, split_channels, sum_except_batch, zeros_per_sample
from cinn.subnets import SubnetParams, check_subnet, concat_condition, subnet_config

MASKS = ("channel", "checkerboard")


def checkerboard_mask(x, parity=0):
    """``m``, 1 where ``x`` passes unchanged: shape ``(1, *spatial, 1)`` for images
    (and any rank above 2), ``(1, C)`` for vectors. ``(sum of indices + parity)`` even."""
    shape = ops.shape(x)
    rank = len(x.shape)
    axes = [rank - 1] if rank == 2 else list(range(1, rank - 1))
    total = 0
    for axis in axes:
        index_shape = [1] * rank
        index_shape[axis] = -1
        total = total + ops.reshape(ops.arange(shape[axis], dtype="int32"), index_shape)
    return ops.cast(ops.equal((total + int(parity)) % 2, 0), x.dtype)


class MaskedCoupling(InvertibleLayer):
    """Base of the couplings with a subnet and a RealNVP mask (see the module).

    ``subnet``: a spec or registered factory (see ``cinn.subnets.check_subnet``);
    its zero-initialised projection gives ``params_per_element`` raw parameters per
    transformed element. ``mask``: ``"channel"`` or ``"checkerboard"``; ``parity``:
    0 or 1, alternate it between consecutive blocks.

    Subclasses implement ``_transform(x, h, inverse) -> (out, log_det)``: the
    elementwise map on ``x`` (the transformed channels for the channel mask, all of
    ``x`` for the checkerboard) with raw parameters ``h`` (``x``'s shape, last axis
    ``channels * params_per_element``), and the elementwise ``log|d out / d x|`` of the
    direction applied (``None`` when it is 0 everywhere).
    """

    uses_condition = True
    #: raw subnet outputs per transformed element
    params_per_element = 1

    def __init__(self, subnet=None, mask="channel", parity=0, **kwargs):
        super().__init__(**kwargs)
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity!r}")
        self._subnet_arg = check_subnet(subnet)
        self.mask = mask
        self.parity = int(parity)
        self.params = None

    def build(self, x_shape, c_shape=None):
        channels = x_shape[-1]
        if self.mask == "channel" or len(x_shape) == 2:
            if channels is None or channels < 2:
                raise ValueError(f"{self.name}: a {self.mask} mask needs at least 2 "
                                 f"{'channels' if len(x_shape) > 2 else 'features'}, "
                                 f"got {channels}")
        if self.mask == "channel":
            kept = channels // 2
            self.split_at = kept if self.parity == 0 else channels - kept
            transformed = channels - kept
        else:
            transformed = channels
        self.params = SubnetParams(transformed * self.params_per_element, self._subnet_arg,
                                   name="params")
        super().build(x_shape, c_shape)

    def halves(self, x):
        """Channel mask: ``x -> (kept, transformed)`` channels."""
        first, second = split_channels(x, self.split_at)
        return (first, second) if self.parity == 0 else (second, first)

    def join_halves(self, kept, transformed):
        """Channel mask: the inverse of ``halves``."""
        parts = [kept, transformed] if self.parity == 0 else [transformed, kept]
        return ops.concatenate(parts, axis=-1)

    def _transform(self, x, h, inverse):  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward(self, x, c):
        return self._couple(x, c, inverse=False)

    def _inverse(self, y, c):
        return self._couple(y, c, inverse=True)

    def subnet_output(self, x, c=None):
        """``(h, part)``: the raw parameters the subnet gives for ``x`` (or for the
        ``y`` of the same kept part: they are the same) and the part of ``x`` they
        transform (``h`` has ``part``'s shape, last axis ``params_per_element`` times
        as long). ``part`` is the transformed channels for the channel mask, all of
        ``x`` for the checkerboard (whose kept positions the block leaves as they are)."""
        if self.mask == "channel":
            kept, part = self.halves(x)
            features = kept
        else:
            m = checkerboard_mask(x, self.parity)
            part, features = x, x * m
            if len(x.shape) > 2:
                features = ops.concatenate([features, ops.ones_like(x[..., :1]) * m], axis=-1)
        return ops.cast(self.params(concat_condition(features, c)), x.dtype), part

    def _couple(self, x, c, inverse):
        """The coupling in either direction: the kept part is the same in ``x`` and
        ``y``, so the subnet sees the same input both ways."""
        h, part = self.subnet_output(x, c)
        out, log_det = self._transform(part, h, inverse)
        if self.mask == "channel":
            y = self.join_halves(self.halves(x)[0], out)
        else:
            keep = ops.greater(checkerboard_mask(x, self.parity), 0.5)
            y = ops.where(keep, x, out)
            if log_det is not None:
                log_det = ops.where(keep, ops.zeros_like(log_det), log_det)
        if log_det is None:
            return y, zeros_per_sample(x)
        return y, sum_except_batch(log_det)

    def get_config(self):
        return {**super().get_config(), "subnet": subnet_config(self._subnet_arg),
                "mask": self.mask, "parity": self.parity}
