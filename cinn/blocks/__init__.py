"""Invertible blocks. Each: ``y, log_det = block.forward_and_log_det(x, c=None)``,
``x, log_det = block.inverse_and_log_det(y, c=None)`` (see ``cinn.blocks.base``)."""
from cinn.blocks.actnorm import ActNorm
from cinn.blocks.base import InvertibleLayer, soft_clamp
from cinn.blocks.coupling import AffineCoupling
from cinn.blocks.downsample import HaarDownsample, Squeeze
from cinn.blocks.injector import AffineInjector
from cinn.blocks.permute import InvertibleConv1x1, RandomPermutation
from cinn.blocks.split import Split

__all__ = ["ActNorm", "AffineCoupling", "AffineInjector", "HaarDownsample",
           "InvertibleConv1x1", "InvertibleLayer", "RandomPermutation", "Split",
           "Squeeze", "soft_clamp"]
