"""Colourise a picture: L from the input, N sampled ab channels, back to RGB."""
import numpy as np
from keras import ops

from cinn.apps.colorization.defaults import DEFAULT_HUE, DEFAULT_SATURATION, temperatures
from cinn.apps.colorization.color import merge_lab, split_lab, to_uint8
from cinn.apps.colorization.global_colour import (check_hue, check_saturation, global_draws,
                                             is_identity, recolour)
from cinn.apps.colorization.guided import guided_upsample, shrink_l
from cinn.apps.common.images import pad_to_multiple
from cinn.apps.common.tiling import decode_strips, strip_features
from cinn.errors import CinnError
from cinn.model import draw_latents
from cinn.sampling import check_sampling

#: rows per pass of the per-pixel Lab conversions (bounded memory for large photos)
LAB_ROWS = 256


def as_rgb(image):
    """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> uint8 RGB (H, W, 3)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise CinnError(f"expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise CinnError(f"expected an image of shape (H, W), (H, W, 1) or (H, W, 3), "
                        f"got {img.shape}")
    if min(img.shape[:2]) < 2:
        raise CinnError(f"image is {img.shape[1]}x{img.shape[0]} pixels; at least 2x2 "
                        "is needed")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def grey_of(rgb):
    """The L channel of ``rgb`` shown as a grey RGB picture (what the model sees)."""
    cond = l_of(as_rgb(rgb))
    return by_rows(lambda c: to_uint8(merge_lab(c, np.zeros(c.shape[:-1] + (2,), "float32"))),
                   cond)


def working_size(model):
    """The fixed side a flow works at (a flow with a global section: ``model.size``
    of its config), ``None`` for flows of any size."""
    shape = tuple(getattr(model, "x_shape", (None,)))
    return int(shape[0]) if len(shape) == 3 and shape[0] is not None else None


def has_global(model):
    """Whether ``model`` has a global section (global latents)."""
    return getattr(model, "global_section", None) is not None


def sampling_temperatures(model, temperature=None, local_temperature=None):
    """``(global, local)`` temperatures for ``model``, checked (``None``: the app's
    defaults, ``defaults.temperatures``: a flow with global latents samples them at
    ``DEFAULT_TEMPERATURE`` and its other latents at ``DEFAULT_LOCAL_TEMPERATURE``; a
    flow without them samples every latent at one temperature)."""
    t, local = temperatures(has_global(model), temperature, local_temperature)
    t = check_sampling(1, t, None)[1]
    if local != t:
        try:
            local = check_sampling(1, local, None)[1]
        except CinnError as err:
            raise CinnError(str(err).replace("the temperature", "the local temperature",
                                             1)) from None
    return t, local


def latent_scale(model, xs, temperature, local_temperature=None):
    """Per-latent temperatures (dims,) float32 of a sample of shape ``xs``: the global
    section's latents (a flow with one) at ``temperature``, the others at
    ``local_temperature`` (``None``: ``temperature`` too)."""
    parts = model.latent_shapes(xs)
    dims = [int(np.prod(p)) for p in parts]
    scale = np.full(sum(dims), temperature if local_temperature is None else
                    local_temperature, np.float32)
    if has_global(model):
        scale[sum(dims) - dims[-1]:] = temperature
    return scale


def sample_ab(model, cond, n=8, temperature=None, seed=0, batch_size=None,
              compiled=False, saturation=DEFAULT_SATURATION, hue=DEFAULT_HUE,
              local_temperature=None):
    """Scaled ab samples (n, H, W, 2) for a scaled L (H, W, 1) of any size:
    padded (reflect) to the network's multiple, sampled, cropped back (a flow of a
    fixed working size: L shrunk to it, sampled, and each sample's ab brought back to
    H x W by ``guided.guided_upsample`` with the full-resolution L).
    ``temperature``, ``local_temperature``: a flow with a global section samples its
    global latents at ``temperature`` and the others at ``local_temperature``
    (``latent_scale``); a flow without one samples every latent at one temperature
    (``sampling_temperatures``; ``None``: the app's defaults, ``defaults.py``).
    ``saturation``, ``hue``: post-hoc global colour draws, off by default: sample
    ``i`` scaled and rotated by draw ``i`` of ``global_colour.global_draws(n, seed,
    saturation, hue)`` (``saturation=None, hue=0``: the flow's samples as they are).

    ``compiled=True`` runs the inverse pass as one compiled program (jit on JAX,
    ``tf.function`` on TensorFlow; the same z as ``model.sample``): worth it when
    many inputs share one size (evaluation), not for a single picture.
    """
    temperature, local_temperature = sampling_temperatures(model, temperature,
                                                           local_temperature)
    n, temperature, seed = check_sampling(n, temperature, seed)
    decode = _compiled(model, "decode") if compiled else None
    if decode is None:
        return np.concatenate(list(iter_ab(model, cond, n, temperature, seed, batch_size,
                                           saturation, hue, local_temperature)))
    size = working_size(model)
    small = cond if size is None else shrink_l(cond, size)
    padded, (h, w) = pad_to_multiple(small, model.multiple)
    z = draw_latents(n, padded.size * 2, seed) * latent_scale(
        model, padded.shape[:2] + (2,), temperature, local_temperature)
    ab = decode(z, np.repeat(padded[None], n, axis=0))
    ab = np.asarray(ops.convert_to_numpy(ab), "float32")[:, :h, :w]
    if size is not None:
        ab = np.stack([guided_upsample(one, cond) for one in ab])
    return _recolour(ab, _draws(n, seed, saturation, hue))


def iter_ab(model, cond, n=8, temperature=None, seed=0, batch_size=None,
            saturation=DEFAULT_SATURATION, hue=DEFAULT_HUE, local_temperature=None):
    """``sample_ab`` a chunk at a time: scaled ab arrays (m, H, W, 2), in order."""
    temperature, local_temperature = sampling_temperatures(model, temperature,
                                                           local_temperature)
    n, temperature, seed = check_sampling(n, temperature, seed)
    draws = _draws(n, seed, saturation, hue)
    size = working_size(model)
    if size is not None:  # a fixed working size: a small flow, then guided upsampling
        # the latents that sample_chunks would draw, scaled per part (global, local)
        z = draw_latents(n, size * size * 2, seed) * latent_scale(
            model, (size, size, 2), temperature, local_temperature)
        for ab in model.sample_chunks(shrink_l(cond, size)[None], n=n, temperature=1.0,
                                      seed=seed, z=z, batch_size=batch_size,
                                      bit_stable=True):
            # one sample at the photo's size at a time: memory for one, not the chunk
            for one in np.asarray(ops.convert_to_numpy(ab), "float32"):
                yield _recolour(guided_upsample(one, cond)[None], draws)
                draws = None if draws is None else [d[1:] for d in draws]
        return
    padded, (h, w) = pad_to_multiple(cond, model.multiple)
    # bit_stable: the apps' promise, sample k the same bytes whatever N and the chunks
    for ab in model.sample_chunks(padded[None], n=n, temperature=temperature, seed=seed,
                                  batch_size=batch_size, bit_stable=True,
                                  features=strip_features(model, padded[None]),
                                  strips=decode_strips(model, padded[None])):
        ab = np.asarray(ops.convert_to_numpy(ab), "float32")[:, :h, :w]
        yield _recolour(ab, draws)
        draws = None if draws is None else [d[len(ab):] for d in draws]


def _draws(n, seed, saturation, hue):
    """The global colour draws ``(scale, degrees)`` of ``n`` samples as NumPy arrays,
    or ``None`` when they change nothing; ``seed=None``: a random start."""
    saturation, hue = check_saturation(saturation), check_hue(hue)
    if is_identity(saturation, hue):
        return None
    if seed is None:
        seed = int(np.random.default_rng().integers(65536))
    return [np.asarray(ops.convert_to_numpy(d), "float32")
            for d in global_draws(n, seed, saturation, hue)]


def _recolour(ab, draws):
    """``ab`` (m, H, W, 2) mapped in place by the first ``m`` of ``draws`` (``None``:
    unchanged), ``LAB_ROWS`` rows at a time (no full-size intermediates)."""
    if draws is None:
        return ab
    scale, degrees = draws
    for k in range(len(ab)):
        ab[k] = by_rows(lambda x, s=scale[k], d=degrees[k]: np.asarray(
            ops.convert_to_numpy(recolour(x, s, d)), "float32"), ab[k])
    return ab


def _compiled(model, method):
    try:
        from cinn.compile import compiled
    except ImportError:  # pragma: no cover - older cinn: run eagerly
        return None
    return compiled(model, method)


def colorize(model, image, n=8, temperature=None, seed=0, batch_size=None,
             saturation=DEFAULT_SATURATION, hue=DEFAULT_HUE, local_temperature=None):
    """``n`` colourings of ``image`` (uint8, grey or colour; its colour is ignored).

    Returns uint8 RGB samples, shape (n, H, W, 3), at the input's size; their L
    channel is the input's. The same ``seed`` and weights give the same bytes.
    ``temperature``, ``local_temperature``: a flow with global latents (the default
    weights) samples them at ``temperature`` (default 1.0) and its other latents at
    ``local_temperature`` (default 0.5); a flow without them samples every latent at
    ``temperature`` if given, else ``local_temperature``, else 0.5
    (``cinn.apps.colorization.defaults``). ``saturation``, ``hue``: post-hoc global
    colour draws of each sample (``sample_ab``), off by default.
    """
    return np.stack(list(iter_colorize(model, image, n, temperature, seed, batch_size,
                                       saturation, hue, local_temperature)))


def iter_colorize(model, image, n=8, temperature=None, seed=0,
                  batch_size=None, saturation=DEFAULT_SATURATION, hue=DEFAULT_HUE,
                  local_temperature=None):
    """The samples of ``colorize`` one at a time (uint8 (H, W, 3)), as they are
    drawn: memory for one chunk of samples, not ``n``."""
    temperature, local_temperature = sampling_temperatures(model, temperature,
                                                           local_temperature)
    n, temperature, seed = check_sampling(n, temperature, seed)
    saturation, hue = check_saturation(saturation), check_hue(hue)   # before any work
    cond = l_of(as_rgb(image))
    for ab in iter_ab(model, cond, n, temperature, seed, batch_size, saturation, hue,
                      local_temperature):
        for one in ab:
            yield by_rows(lambda c, x: to_uint8(merge_lab(c, x)), cond, one)


def by_rows(fn, *images, rows=LAB_ROWS):
    """``fn(*images)`` of per-pixel functions (the Lab conversions), computed
    ``rows`` rows at a time: the same values, without full-size intermediates."""
    if images[0].shape[0] <= rows:
        return fn(*images)
    return np.concatenate([fn(*(im[y:y + rows] for im in images))
                           for y in range(0, images[0].shape[0], rows)], axis=0)


def l_of(rgb):
    """Scaled L (H, W, 1) float32 of uint8 RGB (``split_lab``'s condition)."""
    return by_rows(lambda x: np.asarray(ops.convert_to_numpy(split_lab(x)[0]), "float32"),
                   rgb)
