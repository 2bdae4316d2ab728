"""sRGB <-> CIE Lab (D65, 2° observer), written with ``keras.ops``.

The same code runs on NumPy arrays and on TensorFlow and JAX tensors (inside a
traced function too), and matches ``skimage.color.rgb2lab`` / ``lab2rgb``.
RGB is float in [0, 1] (or uint8, scaled here), Lab has L in [0, 100].

The cINN works on scaled channels: ``L / 50 - 1`` (about [-1, 1]) as the
condition and ``ab / AB_SCALE`` (about [-1, 1]) as the data.
"""
import numpy as np
from keras import ops

from cinn.precision import full_float32

#: ab (and L) scaling of the network's inputs and outputs
AB_SCALE = 100.0
L_SCALE = 50.0

_WHITE = (0.95047, 1.0, 1.08883)  # D65, 2° observer (as scikit-image)
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_EPS = 0.008856
_KAPPA = 7.787


def _to_float(rgb):
    rgb = ops.convert_to_tensor(rgb)
    if "int" in str(rgb.dtype):
        return ops.cast(rgb, "float32") / 255.0
    return ops.cast(rgb, "float32")


def _matmul_channels(x, m):
    """``x[..., :] @ m.T`` for a constant 3x3 matrix ``m`` (in full float32 on GPUs too)."""
    with full_float32():
        return ops.matmul(x, ops.convert_to_tensor(m.T.astype("float32")))


def rgb_to_lab(rgb):
    """sRGB (..., 3) in [0, 1] (float) or [0, 255] (uint8) -> Lab (..., 3) float32."""
    rgb = _to_float(rgb)
    lin = ops.where(rgb > 0.04045,
                    ops.power((ops.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4), rgb / 12.92)
    xyz = _matmul_channels(lin, _XYZ_FROM_RGB)
    xyz = xyz / ops.convert_to_tensor(np.array(_WHITE, "float32"))
    f = ops.where(xyz > _EPS, ops.power(ops.maximum(xyz, _EPS), 1.0 / 3.0),
                  _KAPPA * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0:1], f[..., 1:2], f[..., 2:3]
    return ops.concatenate([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """Lab (..., 3) -> sRGB (..., 3) float32 in [0, 1] (out-of-gamut colours clipped)."""
    lab = ops.cast(ops.convert_to_tensor(lab), "float32")
    L, a, b = lab[..., 0:1], lab[..., 1:2], lab[..., 2:3]
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = ops.maximum(fy - b / 200.0, 0.0)
    f = ops.concatenate([fx, fy, fz], axis=-1)
    xyz = ops.where(f > 0.2068966, ops.power(ops.maximum(f, 0.2068966), 3.0),
                    (f - 16.0 / 116.0) / _KAPPA)
    xyz = xyz * ops.convert_to_tensor(np.array(_WHITE, "float32"))
    lin = _matmul_channels(xyz, _RGB_FROM_XYZ)
    rgb = ops.where(lin > 0.0031308,
                    1.055 * ops.power(ops.maximum(lin, 0.0031308), 1.0 / 2.4) - 0.055,
                    lin * 12.92)
    return ops.clip(rgb, 0.0, 1.0)


def to_uint8(rgb):
    """Float RGB in [0, 1] -> uint8 NumPy array (rounded)."""
    rgb = np.asarray(ops.convert_to_numpy(rgb), "float32")
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def split_lab(rgb):
    """uint8/float RGB -> (condition ``L/50 - 1`` (..., 1), data ``ab/AB_SCALE`` (..., 2))."""
    lab = rgb_to_lab(rgb)
    return lab[..., :1] / L_SCALE - 1.0, lab[..., 1:] / AB_SCALE


def merge_lab(cond, ab_scaled):
    """Inverse of ``split_lab``: scaled L and ab -> float RGB in [0, 1]."""
    cond = ops.cast(ops.convert_to_tensor(cond), "float32")
    ab = ops.cast(ops.convert_to_tensor(ab_scaled), "float32")
    return lab_to_rgb(ops.concatenate([(cond + 1.0) * L_SCALE, ab * AB_SCALE], axis=-1))
