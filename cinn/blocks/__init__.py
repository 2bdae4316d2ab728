"""Invertible blocks. Each: ``y, log_det = block.forward_and_log_det(x, c=None)``,
``x, log_det = block.inverse_and_log_det(y, c=None)`` (see ``cinn.blocks.base``)."""
from cinn.blocks.actnorm import ActNorm
from cinn.blocks.additive import AdditiveCoupling, DiagonalScaling
from cinn.blocks.autoregressive import MADE, MaskedAutoregressiveFlow
from cinn.blocks.base import InvertibleLayer, soft_clamp
from cinn.blocks.coupling import AffineCoupling, MaskedAffineCoupling
from cinn.blocks.downsample import HaarDownsample, Squeeze
from cinn.blocks.injector import AffineInjector
from cinn.blocks.masks import MaskedCoupling, checkerboard_mask
from cinn.blocks.permute import InvertibleConv1x1, RandomPermutation
from cinn.blocks.spline import RationalQuadraticCoupling, rational_quadratic_spline
from cinn.blocks.split import Split

__all__ = ["MADE", "ActNorm", "AdditiveCoupling", "AffineCoupling", "AffineInjector",
           "DiagonalScaling", "HaarDownsample", "InvertibleConv1x1", "InvertibleLayer",
           "MaskedAffineCoupling", "MaskedAutoregressiveFlow", "MaskedCoupling",
           "RandomPermutation", "RationalQuadraticCoupling", "Split", "Squeeze",
           "checkerboard_mask", "rational_quadratic_spline", "soft_clamp"]
