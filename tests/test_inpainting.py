"""Inpainting app: masks, known pixels kept bit-exactly, special masks, CLI errors,
evaluation, shipped weights."""
import warnings

import numpy as np
import pytest

from cinn.cli import main
from cinn.apps.common.images import write_image
from cinn.apps.inpainting.infer import InpaintingNotice, inpaint
from cinn.apps.inpainting.masks import box_mask, random_mask, random_masks, read_mask
from cinn.apps.inpainting.model import InpaintingINN, build_model
from helpers import randomize

# Every test picture pads to 16x16 and every call draws 2 samples: few distinct
# shapes keep the JAX backend (which compiles each op per shape when eager) fast.
TINY = {"levels": 2, "blocks": 1, "subnet": {"hidden": 8}, "cond_channels": 4,
        "cond_hidden": 8, "cond_blocks": 1}


@pytest.fixture(scope="module")
def model():
    m = build_model(TINY)
    randomize(m, scale=0.05, seed=1)   # zero-initialised couplings would be identities
    return m


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("inp") / "tiny.keras"
    model.save(path)
    return path


def picture(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("h,w", [(16, 16), (13, 15), (15, 13)])
def test_known_pixels_bit_identical_and_hole_diverse(model, h, w):
    rgb = picture(h, w)
    mask = box_mask((h, w), (1, 2, max(1, w // 2), max(1, h // 2)))
    out = inpaint(model, rgb, mask, n=2, temperature=1.0, seed=0)
    assert out.shape == (2, h, w, 3) and out.dtype == np.uint8
    for s in out:
        assert np.array_equal(s[~mask], rgb[~mask])
    assert out.astype(float).std(axis=0)[mask].mean() > 0


def test_seed_determinism(model):
    rgb, mask = picture(16, 16, 1), random_mask((16, 16), 3)
    a = inpaint(model, rgb, mask, n=2, seed=5)
    b = inpaint(model, rgb, mask, n=2, seed=5)
    c = inpaint(model, rgb, mask, n=2, seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_empty_mask_returns_input(model):
    rgb = picture(9, 11)
    with pytest.warns(InpaintingNotice, match="empty"):
        out = inpaint(model, rgb, np.zeros((9, 11), bool), n=3)
    assert out.shape == (3, 9, 11, 3) and all(np.array_equal(o, rgb) for o in out)


def test_full_mask_gives_unconditional_samples(model):
    rgb = picture(14, 16)
    with pytest.warns(InpaintingNotice, match="whole image"):
        out = inpaint(model, rgb, np.ones((14, 16), bool), n=2, seed=0)
    assert out.shape == (2, 14, 16, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0], out[1])


def test_mask_generator_coverage_and_seed():
    for shape in [(64, 64), (40, 72), (321, 481)]:
        masks = random_masks(60 if shape[0] < 100 else 10, shape, 0)
        cov = masks.mean(axis=(1, 2))
        assert cov.min() >= 0.1 and cov.max() <= 0.5, (shape, cov.min(), cov.max())
    for kind in ("box", "strokes"):
        cov = [random_mask((48, 48), s, kind=kind).mean() for s in range(30)]
        assert 0.1 <= min(cov) and max(cov) <= 0.5
    assert np.array_equal(random_masks(5, (32, 32), 7), random_masks(5, (32, 32), 7))
    assert not np.array_equal(random_masks(5, (32, 32), 7), random_masks(5, (32, 32), 8))


def test_read_mask_white_is_missing(tmp_path):
    m = np.zeros((6, 10), np.uint8)
    m[2:4, 3:8] = 255
    write_image(tmp_path / "m.png", m)
    assert np.array_equal(read_mask(tmp_path / "m.png", (6, 10)), m > 0)


def test_cli_grid_and_samples(weights, tmp_path, capsys):
    write_image(tmp_path / "img.png", picture(15, 14))
    mask = np.zeros((15, 14), np.uint8)
    mask[5:12, 4:11] = 255
    write_image(tmp_path / "mask.png", mask)
    rc = main(["inpaint", str(tmp_path / "img.png"), "--mask", str(tmp_path / "mask.png"),
               "-n", "2", "--weights", str(weights), "-o", str(tmp_path / "out"),
               "--save-samples"])
    assert rc == 0
    from cinn.apps.common.images import read_image

    grid = read_image(tmp_path / "out" / "img_inpaint.png")
    assert grid.shape == (15, 3 * 14 + 2 * 4, 3)
    src = read_image(tmp_path / "img.png")
    for i in range(2):
        s = read_image(tmp_path / "out" / f"img_sample{i}.png")
        assert np.array_equal(s[mask == 0], src[mask == 0])
    rc = main(["inpaint", str(tmp_path / "img.png"), "--box", "2,3,5,4", "-n", "2",
               "--weights", str(weights), "-o", str(tmp_path / "out2")])
    assert rc == 0 and (tmp_path / "out2" / "img_inpaint.png").exists()


@pytest.mark.parametrize("extra,message", [
    (["--mask", "WRONG"], "same size"),
    (["--box", "1,2,0,4"], "x,y,w,h"),
    (["--box", "40,1,3,3"], "outside"),
    (["--mask", "MISSING"], "no such file"),
])
def test_cli_bad_masks_exit_1(weights, tmp_path, capsys, extra, message):
    write_image(tmp_path / "img.png", picture(12, 16))
    write_image(tmp_path / "wrong.png", np.full((12, 15), 255, np.uint8))
    extra = [{"WRONG": str(tmp_path / "wrong.png"),
              "MISSING": str(tmp_path / "nope.png")}.get(a, a) for a in extra]
    rc = main(["inpaint", str(tmp_path / "img.png"), *extra, "--weights", str(weights),
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_empty_mask_notice(weights, tmp_path, capsys):
    write_image(tmp_path / "img.png", picture(8, 8))
    write_image(tmp_path / "mask.png", np.zeros((8, 8), np.uint8))
    rc = main(["inpaint", str(tmp_path / "img.png"), "--mask", str(tmp_path / "mask.png"),
               "-n", "2", "--weights", str(weights), "-o", str(tmp_path / "out")])
    assert rc == 0 and "mask is empty" in capsys.readouterr().err


def test_evaluate_runs(weights, tmp_path, capsys):
    """The posterior report: the flow at the given T and at 1 with CRPS, coverage and
    calibration (mean [95 % interval]), Telea as a deterministic row (CRPS = MAE, no
    spread figures), the sweep's calibrated temperature and the calibration plots."""
    data = tmp_path / "data"
    for i in range(3):
        write_image(data / f"{i}.png", picture(20, 28, i))
    out = tmp_path / "plots"
    rc = main(["evaluate", "inpainting", "--data", str(data), "--weights", str(weights),
               "-n", "3", "--size", "16", "--temperature", "0.3", "--temperatures", "0", "2",
               "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and "---" not in line:
            cells = [c.strip() for c in line.split("|")[1:-1]]
            rows.setdefault(cells[0], []).extend(cells[1:])
    flow, flow1 = rows["cINN, N = 3, T = 0.3"], rows["cINN, N = 3, T = 1"]
    telea = rows["OpenCV Telea (`cv2.inpaint`, radius 3)"]
    assert len(flow) == 11 and all(" [" in c for c in flow)
    assert telea[2:5] == ["—"] * 3 and " [" in telea[0] and telea[1] == telea[0]
    mean, rest = flow1[2].split(" [")
    assert 0 < float(mean) <= 1                              # range coverage at T = 1
    sweep = text.split("# temperature sweep")[1]
    assert [ln.split("|")[1].strip() for ln in sweep.splitlines()
            if ln.startswith("| ")][2:] == ["0", "0.3", "1", "2"]
    assert "calibrated temperature" in sweep or "not reached" in sweep
    assert sorted(p.name for p in out.iterdir()) == [
        "calibration_inpainting_data_t0.3.png", "calibration_inpainting_data_t1.png"]


def test_evaluate_crps_is_the_hole_mae_for_telea(weights):
    """CRPS and coverage are scored over the hole only: Telea's CRPS is its MAE there,
    and a flow's samples (every known pixel copied) are scored by ``cinn.diagnostics``
    on the hole's pixels."""
    from cinn import diagnostics as dg
    from cinn.apps.common.pretrained import load_model
    from cinn.apps.inpainting.evaluate import eval_masks, evaluate_images, telea

    model = load_model("inpainting", weights)
    rgb = picture(16, 20, 3)
    report, extras = evaluate_images(model, [rgb], n=4, temperature=0.7, seed=1)
    mask = eval_masks([rgb], 1)[0]
    hole = rgb[mask].astype(np.float64)
    assert report.methods["telea"].images[0]["crps"] == pytest.approx(
        np.abs(telea(rgb, mask)[mask] - hole).mean())
    samples = inpaint(model, rgb, mask, n=4, temperature=0.7, seed=1)
    got = report.methods["flow_t0.7"].images[0]
    assert got["crps"] == pytest.approx(dg.crps(samples[:, mask], hole).mean())
    assert got["range_coverage"] == pytest.approx(dg.range_coverage(samples[:, mask], hole))
    assert extras["coverage"] == pytest.approx(mask.mean())


def test_shipped_weights_inpaint_astronaut():
    from skimage import data
    from skimage.transform import resize

    from cinn.apps.common.pretrained import load_model

    m = load_model("inpainting")
    assert isinstance(m, InpaintingINN) and m.fill_net is not None     # the learned fill inside
    rgb = (resize(data.astronaut(), (50, 60), anti_aliasing=True) * 255).round().astype(np.uint8)
    mask = box_mask((50, 60), (20, 15, 18, 14))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InpaintingNotice)
        out = inpaint(m, rgb, mask, n=2, temperature=0.8, seed=0)
    assert out.shape == (2, 50, 60, 3)
    assert all(np.array_equal(o[~mask], rgb[~mask]) for o in out)
    assert out.astype(float).std(axis=0)[mask].mean() > 0


def test_training_pair_representation():
    from cinn.apps.inpainting.model import KNOWN_NOISE, fill_hole, to_flow
    from cinn.apps.inpainting.task import make_pair

    crops = np.stack([picture(16, 16, s) for s in range(4)])
    x, c = make_pair(crops, np.random.default_rng(0))
    assert x.shape == (4, 16, 16, 3) and c.shape == (4, 16, 16, 4)
    masks = c[..., 3] > 0.5
    assert set(np.unique(c[..., 3])) <= {0.0, 1.0}
    for i in range(4):
        m = masks[i]
        assert 0.1 <= m.mean() <= 0.5
        filled = to_flow(fill_hole(crops[i], m))
        np.testing.assert_array_equal(c[i, ..., :3], filled)           # condition: filled image
        np.testing.assert_array_equal(c[i][~m][:, :3], to_flow(crops[i])[~m])
        np.testing.assert_allclose(x[i][m], (to_flow(crops[i]) - filled)[m], atol=1e-6)
    known = x[~masks]                                                    # noise, not pixels
    assert abs(known.std() - KNOWN_NOISE) < 0.02 and abs(known.mean()) < 0.02


def test_unet_condition_net_option(tmp_path):
    """``cond_net: unet`` (cinn.apps.common.condnet): known pixels kept, same samples after a
    .keras round trip; an unknown kind is refused by name."""
    import keras

    from cinn.conditioning import UNetConditionNet

    m = build_model({**TINY, "cond_net": "unet", "cond_widths": [4, 6, 8]})
    assert isinstance(m.cond_net, UNetConditionNet)
    randomize(m, scale=0.05, seed=2)
    rgb, mask = picture(16, 16, 3), box_mask((16, 16), (4, 4, 8, 8))
    out = inpaint(m, rgb, mask, n=2, temperature=0.8, seed=0)
    assert all(np.array_equal(o[~mask], rgb[~mask]) for o in out)
    path = tmp_path / "unet.keras"
    m.save(path)
    again = inpaint(keras.saving.load_model(path), rgb, mask, n=2, temperature=0.8, seed=0)
    np.testing.assert_array_equal(again, out)
    with pytest.raises(ValueError, match="cond_net must be one of"):
        build_model({**TINY, "cond_net": "resnet"})


# -- the learned fill (apps/inpainting/regressor.py) ---------------------------------------
TINY_L2 = {"type": "regressor", "cond_widths": [4, 6], "cond_blocks": 1}


@pytest.fixture(scope="module")
def regressor_file(tmp_path_factory):
    net = build_model(TINY_L2)
    randomize(net, scale=0.1, seed=3)
    path = tmp_path_factory.mktemp("l2") / "l2.keras"
    net.save(path)
    return path


def test_regressor_predicts_only_the_hole_and_its_loss_is_the_hole_mse():
    from cinn.apps.inpainting.regressor import InpaintingRegressor
    from cinn.apps.inpainting.task import make_pair
    from keras import ops

    net = build_model(TINY_L2)
    assert isinstance(net, InpaintingRegressor) and net.multiple == 4
    c0 = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 8, 8, 4)).astype("float32")
    assert np.all(ops.convert_to_numpy(net.predict_residual(c0)) == 0)    # starts as Telea
    randomize(net, scale=0.1, seed=4)
    x, c = make_pair(np.stack([picture(16, 16, s) for s in range(2)]), np.random.default_rng(1))
    pred = ops.convert_to_numpy(net((x, c)))
    hole = c[..., 3:] > 0.5
    assert pred.shape == x.shape and np.all(pred[~np.broadcast_to(hole, pred.shape)] == 0)
    assert np.abs(pred[np.broadcast_to(hole, pred.shape)]).max() > 0
    want = ((pred - x) ** 2)[np.broadcast_to(hole, x.shape)].mean()      # noise outside: ignored
    got = float(ops.convert_to_numpy(net.compute_loss(x=(x, c), y_pred=ops.convert_to_tensor(pred))))
    assert got == pytest.approx(want, rel=1e-4)
    with pytest.raises(Exception, match="model.type must be 'flow' or 'regressor'"):
        build_model({"type": "gan"})


def test_regressor_as_weights_gives_one_completion_n_times(regressor_file, tmp_path, capsys):
    from cinn.apps.common.pretrained import load_model

    net = load_model("inpainting", regressor_file)
    rgb, mask = picture(13, 15, 5), box_mask((13, 15), (3, 2, 7, 6))
    out = inpaint(net, rgb, mask, n=3, temperature=0.8, seed=0)
    assert out.shape == (3, 13, 15, 3) and all(np.array_equal(o, out[0]) for o in out)
    assert np.array_equal(out[0][~mask], rgb[~mask])
    write_image(tmp_path / "data" / "0.png", rgb)
    assert main(["evaluate", "inpainting", "--data", str(tmp_path / "data"), "--weights",
                 str(regressor_file), "-n", "2", "-o", str(tmp_path / "plots")]) == 0
    assert "| L2 regressor (one prediction), N = 2, T = " in capsys.readouterr().out


def test_flow_around_the_learned_fill(regressor_file, tmp_path):
    """``fill_init``: the regressor is frozen inside the flow, refines the fill the flow
    is conditioned on (training pairs and sampling alike) and survives a .keras round
    trip; a flow file as ``fill_init`` is refused."""
    import keras

    from cinn.apps.common.pretrained import load_model
    from cinn.apps.inpainting.evaluate import evaluate_images
    from cinn.apps.inpainting.model import fill_hole, learned_fill, prepare, to_flow
    from cinn.errors import CinnError

    m = build_model({**TINY, "fill_init": str(regressor_file)})
    assert m.fill_net is not None and not m.fill_net.trainable
    assert not any(v.path.startswith(m.fill_net.name) for v in m.trainable_variables)
    randomize(m, scale=0.05, seed=5)
    rgb, mask = picture(16, 16, 6), box_mask((16, 16), (4, 4, 8, 8))
    fill = learned_fill(m.fill_net, rgb, mask)
    assert not np.array_equal(fill, fill_hole(rgb, mask)) and np.array_equal(fill[~mask], rgb[~mask])
    x, c = prepare(rgb[None], mask[None], 0, m.fill_net)              # condition: the learned fill
    np.testing.assert_allclose(c[0, ..., :3], to_flow(fill), atol=1 / 255)
    out = inpaint(m, rgb, mask, n=2, temperature=0.8, seed=0)
    assert all(np.array_equal(o[~mask], rgb[~mask]) for o in out)
    path = tmp_path / "flow_l2.keras"
    m.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_array_equal(inpaint(again, rgb, mask, n=2, temperature=0.8, seed=0), out)
    report, _ = evaluate_images(again, [rgb], n=2, temperature=0.5)
    assert "fill" in report.methods
    assert "fill" not in evaluate_images(build_model(TINY), [rgb], n=1)[0].methods
    from cinn.apps.inpainting.evaluate import eval_masks

    hole = eval_masks([rgb], 0)[0]                           # deterministic: CRPS = hole MAE
    fill = learned_fill(again.fill_net, rgb, hole)
    assert report.methods["fill"].images[0]["crps"] == pytest.approx(
        np.abs(fill[hole].astype(float) - rgb[hole].astype(float)).mean())
    flow = tmp_path / "flow.keras"
    build_model(TINY).save(flow)
    with pytest.raises(CinnError, match="must be an inpainting regressor"):
        build_model({**TINY, "fill_init": str(flow)})
    assert load_model("inpainting", path).fill_net is not None


def test_large_images_run_the_fill_net_on_a_window_around_the_hole(regressor_file, monkeypatch):
    """Over ``FILL_WINDOW_PIXELS`` the fill net sees the hole's window only: the same
    fill as a run on that window alone, nothing changed outside the hole."""
    from cinn.apps.inpainting import model as M
    from cinn.apps.common.pretrained import load_model

    net = load_model("inpainting", regressor_file)
    assert M.hole_window(box_mask((300, 400), (100, 50, 40, 20))) == (0, 134, 36, 204)
    rgb = picture(96, 80, 7)
    mask = box_mask((96, 80), (60, 30, 6, 8))
    filled = M.to_flow(M.fill_hole(rgb, mask))[None]
    whole = M.refine_fill(net, filled, mask[None])
    y0, y1, x0, x1 = M.hole_window(mask, margin=8)
    alone = M.refine_fill(net, filled[:, y0:y1, x0:x1], mask[None, y0:y1, x0:x1])
    monkeypatch.setattr(M, "FILL_WINDOW_PIXELS", 100)
    monkeypatch.setattr(M, "hole_window", lambda m: (y0, y1, x0, x1))
    windowed = M.refine_fill(net, filled, mask[None])
    np.testing.assert_allclose(windowed[:, y0:y1, x0:x1], alone, atol=1e-6)
    np.testing.assert_array_equal(windowed[:, ~mask], filled[:, ~mask])
    assert not np.allclose(windowed[:, mask], filled[:, mask])
    assert whole.shape == windowed.shape
