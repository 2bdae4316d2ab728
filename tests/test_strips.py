"""Decoding in strips (``cinn.strips``): the one-pass decode's result, in strips."""
import numpy as np
import pytest

from cinn.strips import decode_in_strips, receptive_radius, strip_bounds
from helpers import randomize, to_np


def test_strip_bounds_cover_the_rows_once_on_multiples():
    bounds = strip_bounds(100, rows=30, halo=5, multiple=4)
    assert [(y0, y1) for _, y0, y1, _ in bounds] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    for a, y0, y1, b in bounds:
        assert a % 4 == 0 and y0 % 4 == 0 and (b % 4 == 0 or b == 100)
        assert a == max(0, y0 - 8) and b == min(100, y1 + 8)   # halo 5 -> 8 rows


@pytest.fixture(scope="module")
def superres():
    """A small super-resolution flow (2 levels, injectors, a learned prior), randomised."""
    from cinn.apps.superres.model import build_model

    model = build_model({"scale": 4, "levels": 2, "blocks": 2, "subnet": {"hidden": 8},
                         "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1})
    model.initialize(np.zeros((1, 16, 16, 45), "float32"), np.zeros((1, 16, 16, 3), "float32"))
    randomize(model, scale=0.15, seed=3)
    return model


def _parts(model, h, w, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.random((1, h, w, 3)).astype("float32") - 0.5
    z = rng.standard_normal((1, h * w * 45)).astype("float32")
    return model._latent_parts(z, (h, w, 45)), model.condition_features(c), c, z


def test_radius_counts_every_kernel_at_its_level(superres):
    # level 0: 2 steps x (injector: 3x3 trunk + 3x3 proj, coupling: the same) + the
    # prior's 3x3 trunk and proj = 10; level 1 (x2): 2 x 4 = 8 -> 16
    assert receptive_radius(superres) == 26


def test_strips_equal_one_pass(superres):
    parts, feats, _, _ = _parts(superres, 72, 20)
    full = to_np(superres._decode_parts(parts, feats))
    halo = receptive_radius(superres)
    strips = to_np(decode_in_strips(superres._decode_parts, parts, feats, 72, rows=24,
                                    halo=halo, multiple=2))
    assert strips.shape == full.shape
    assert np.abs(strips - full).max() <= 1e-6


def test_a_halo_below_the_radius_changes_the_result(superres):
    """The halo matters: without it, the strip edges differ (this test can fail)."""
    parts, feats, _, _ = _parts(superres, 72, 20)
    full = to_np(superres._decode_parts(parts, feats))
    cut = to_np(decode_in_strips(superres._decode_parts, parts, feats, 72, rows=16, halo=0,
                                 multiple=2))
    assert np.abs(cut - full).max() > 1e-5   # 1.5e-4 measured


def test_sample_chunks_in_strips_draw_the_same_samples(superres):
    _, _, c, _ = _parts(superres, 40, 12, seed=1)
    one = np.concatenate([to_np(x) for x in superres.sample_chunks(c, n=2, seed=4)])
    strips = np.concatenate([to_np(x) for x in superres.sample_chunks(
        c, n=2, seed=4, strips=(8, receptive_radius(superres)))])
    assert np.abs(one - strips).max() <= 1e-5


def test_apps_decode_large_images_in_strips(superres):
    from cinn.apps.common.tiling import decode_strips

    c = np.zeros((1, 1024, 1024, 3), "float32")
    rows, halo = decode_strips(superres, c)
    assert halo == receptive_radius(superres) and rows >= 2 * halo
    assert decode_strips(superres, c[:, :64, :64]) is None   # small: one pass


@pytest.mark.parametrize("app", ["colorization", "inpainting"])
def test_haar_flows_decode_the_same_in_strips(app, tmp_path):
    """The Haar-level apps (3 levels: strips on multiples of 8 rows) in strips."""
    from helpers import tiny_app_models

    model, _ = tiny_app_models(tmp_path)[app]
    channels = {"colorization": 1, "inpainting": 4}[app]
    c = np.random.default_rng(2).random((1, 64, 24, channels)).astype("float32") - 0.5
    halo = receptive_radius(model)
    assert halo > 0
    one = np.concatenate([to_np(x) for x in model.sample_chunks(c, n=2, seed=1)])
    strips = np.concatenate([to_np(x) for x in model.sample_chunks(c, n=2, seed=1,
                                                                   strips=(16, halo))])
    assert np.abs(one - strips).max() <= 1e-5
