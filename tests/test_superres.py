"""Super-resolution app: bicubic kernel, exact LR-consistency, upscaling, CLI."""
import numpy as np
import pytest

from cinn.apps.superres import consistent, infer
from cinn.apps.superres.evaluate import block_edge_ratio
from cinn.apps.superres.resize import downscale, imresize, resize_matrix, to_uint8, upscale
from helpers import randomize

TINY = {"scale": 4, "levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1},
        "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1, "cond_growth": 4}


@pytest.fixture(scope="module")
def tiny():
    from cinn.apps.superres.model import build_model

    from cinn.apps.superres.task import make_pair

    model = build_model(TINY)
    hr = np.stack([lr_image(24, 32, seed=i) for i in range(2)])
    model.initialize(*make_pair(hr, None, scale=4))     # ActNorm: data-like scales
    randomize(model, scale=0.01, seed=1)
    return model


@pytest.fixture(scope="module")
def tiny_file(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("sr") / "tiny.keras"
    tiny.save(path)
    return path


def lr_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx[..., None] / 2.0 + np.arange(3)) * np.cos(yy[..., None] / 3.0)
    return to_uint8(base + rng.normal(0, 5, (h, w, 3)))


# -- the bicubic kernel --------------------------------------------------------
def test_resize_matrix_rows_sum_to_one_and_constant_stays_constant():
    for n_in, n_out in ((40, 10), (10, 40), (7, 3), (3, 24), (33, 33)):
        np.testing.assert_allclose(resize_matrix(n_in, n_out).sum(axis=1), 1.0, atol=1e-12)
    img = np.full((37, 21, 3), 93.0)
    np.testing.assert_allclose(imresize(img, (9, 50)), 93.0, atol=1e-9)


def test_bicubic_known_properties():
    # 4x downscale with antialiasing: 16 taps of Keys' kernel a=-0.5 stretched 4x
    row = resize_matrix(64, 16)[8]
    assert np.count_nonzero(np.abs(row) > 1e-12) == 16
    # the stretched kernel at offsets +-0.5 ... +-7.5 (normalised): symmetric
    nz = row[np.abs(row) > 1e-12]
    np.testing.assert_allclose(nz, nz[::-1], atol=1e-12)
    # upscaling then downscaling a smooth image gives it back closely
    yy, xx = np.mgrid[0:24, 0:20]
    smooth = 100 + 50 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 6.0)[..., None] * np.ones(3)
    back = downscale(upscale(smooth, 4), 4)
    assert np.abs(back - smooth)[2:-2, 2:-2].max() < 1.0
    # a linear ramp is reproduced exactly by the upscale away from the borders
    ramp = np.tile(np.arange(16.0)[None, :, None], (4, 1, 3))
    up = upscale(ramp, 4)
    expected = (np.arange(64) + 0.5) / 4 - 0.5
    np.testing.assert_allclose(up[0, 8:-8, 0], expected[8:-8], atol=1e-9)


# -- the LR-consistent parametrisation -----------------------------------------
@pytest.mark.parametrize("base", consistent.BASES)
@pytest.mark.parametrize("scale", [4, 8])
def test_details_round_trip_and_exact_consistency(scale, base):
    rng = np.random.default_rng(0)
    hr = rng.random((2, scale * 3, scale * 5, 3))
    lr = downscale(hr, scale)
    d = consistent.to_details(hr, lr, scale, base)
    assert d.shape == (2, 3, 5, consistent.detail_channels(scale))
    np.testing.assert_allclose(consistent.from_details(d, lr, scale, base=base), hr,
                               atol=1e-6)
    # any details give an HR image whose bicubic downscale is the LR image
    other = consistent.from_details(rng.normal(0, 1, d.shape), lr + 0.1, scale, base=base)
    np.testing.assert_allclose(downscale(other, scale), lr + 0.1, atol=1e-9)


def test_consistent_base_zero_details_are_smooth():
    """Zero details: the bicubic base leaves a coarse part constant per 8x8 block
    (steps at the block edges); the consistent base gives U(P lr) itself, smooth."""
    s = 8
    lr = np.random.default_rng(0).random((12, 12, 3)) - 0.5   # texture: D(U(lr)) != lr
    zero = np.zeros(lr.shape[:2] + (consistent.detail_channels(s),))
    blocky = consistent.from_details(zero, lr, s, base="bicubic")
    smooth = consistent.from_details(zero, lr, s, base="consistent")
    np.testing.assert_allclose(smooth, upscale(consistent.base_lr(lr, s, "consistent"), s),
                               atol=1e-9)
    np.testing.assert_allclose(downscale(smooth, s), lr, atol=1e-9)
    assert block_edge_ratio(blocky, s) > 5.0
    assert block_edge_ratio(smooth, s) < 2.0
    assert block_edge_ratio(smooth, s) < 1.1 * block_edge_ratio(upscale(lr, s), s)


def test_unknown_base_is_refused():
    with pytest.raises(ValueError, match="base must be one of"):
        consistent.to_details(np.zeros((8, 8, 3)), np.zeros((2, 2, 3)), 4, "haar")


# -- upscaling with a (tiny) model ---------------------------------------------
@pytest.mark.parametrize("h,w", [(5, 7)])
def test_upscale_shapes_any_size(tiny, h, w):
    out = infer.upscale(tiny, lr_image(h, w), n=2, temperature=0.9, seed=0)
    assert out.shape == (2, 4 * h, 4 * w, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("temperature", [0.0, 0.5, 0.9, 1.2])
def test_no_nan_and_lr_consistent(tiny, temperature):
    lr = lr_image(5, 7, seed=2)
    x = infer.upscale_float(tiny, lr, n=2, temperature=temperature, seed=3)
    assert np.all(np.isfinite(x))
    # structural consistency: the float samples downscale to the LR exactly
    np.testing.assert_allclose(downscale(x, 4), np.broadcast_to(lr, x.shape[:1] + lr.shape),
                               atol=1e-3)
    if temperature == 0:
        np.testing.assert_array_equal(x[0], x[1])


def test_uint8_samples_are_lr_consistent_above_45db(tiny):
    from cinn.apps.superres.evaluate import psnr

    lr = lr_image(5, 7, seed=4)
    for x in infer.upscale(tiny, lr, n=2, temperature=0.9, seed=0):
        assert psnr(downscale(x.astype(np.float64), 4), lr) > 45


def test_seed_determinism(tiny):
    lr = lr_image(5, 7, seed=5)
    a = infer.upscale(tiny, lr, n=2, seed=7)
    b = infer.upscale(tiny, lr, n=2, seed=7)
    c = infer.upscale(tiny, lr, n=2, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    assert np.any(a[0] != a[1])


def test_bad_inputs_rejected(tiny):
    from cinn.errors import CinnError

    with pytest.raises(CinnError, match="1x1 pixels"):
        infer.upscale(tiny, np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(CinnError, match="at least 2x2"):
        infer.upscale(tiny, np.zeros((1, 9, 3), np.uint8))


# -- command line ----------------------------------------------------------------
def test_cli_grid_and_one_pixel_error(tiny_file, tmp_path, capsys):
    from cinn.cli import main
    from cinn.apps.common.images import read_image, write_image

    img = write_image(tmp_path / "small.png", lr_image(5, 7))
    out = tmp_path / "out"
    assert main(["superres", str(img), "--weights", str(tiny_file), "-n", "2",
                 "--seed", "0", "-o", str(out), "--save-samples"]) == 0
    grid = read_image(out / "small_x4_grid.png")
    assert grid.shape == (20, 4 * 28 + 3 * 4, 3)   # bicubic | 2 samples | mean
    assert (out / "small_x4_sample1.png").exists() and (out / "small_x4_mean.png").exists()
    capsys.readouterr()
    one = write_image(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    assert main(["superres", str(one), "--weights", str(tiny_file), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cinn: error:") and "1x1 pixels" in err and "\n" not in err
    assert main(["superres", str(img), "--weights", str(tiny_file), "--scale", "8",
                 "-o", str(out)]) == 1
    assert "upscales 4x" in capsys.readouterr().err


def test_training_pairs(tmp_path):
    from cinn.apps.common.config import load_config
    from cinn.apps.common.images import write_image
    from cinn.apps.superres.task import make_datasets

    for i in range(5):
        write_image(tmp_path / f"{i}.png", lr_image(40, 44, seed=i))
    cfg = load_config("superres")
    cfg["data"].update(crop=32, batch_size=2, steps_per_epoch=1, val_images=1)
    train, val = make_datasets(tmp_path, cfg)
    ((x, c),) = train[0]
    assert x.shape == (2, 8, 8, 45) and c.shape == (2, 8, 8, 3)
    assert x.dtype == np.float32 and np.all(np.abs(c) <= 0.5)


def test_train_scale_8_reads_its_own_config():
    from types import SimpleNamespace

    from cinn.apps.common.config import load_config
    from cinn.apps.superres.task import config_variant

    assert config_variant(SimpleNamespace(scale=None)) is None
    assert config_variant(SimpleNamespace(scale=4)) is None
    cfg = load_config("superres", variant=config_variant(SimpleNamespace(scale=8)))
    assert cfg["model"]["scale"] == 8 and cfg["data"]["crop"] % 16 == 0
    assert load_config("superres", variant="x2")["model"]["scale"] == 4  # no such file: default


# -- shipped weights ---------------------------------------------------------------
@pytest.mark.parametrize("scale, rows, cols, temperature, min_lr_psnr", [
    (4, slice(40, 136), slice(160, 256), 0.9, 45),   # 96x96 face crop
    (8, slice(24, 152), slice(144, 272), 0.5, 40),   # 128x128 face crop
])
def test_shipped_weights_upscale_a_picture(scale, rows, cols, temperature, min_lr_psnr):
    from skimage import data

    from cinn.apps.superres.evaluate import psnr
    from cinn.apps.superres.resize import make_lr

    model = infer.load(None, scale)
    assert model.scale == scale
    hr = data.astronaut()[rows, cols]
    lr = make_lr(hr, scale)
    out = infer.upscale(model, lr, n=2, temperature=temperature, seed=0)
    assert out.shape == (2,) + hr.shape
    assert min(psnr(downscale(x.astype(np.float64), scale), lr) for x in out) > min_lr_psnr
    assert np.abs(out[0].astype(int) - out[1]).mean() > 0
