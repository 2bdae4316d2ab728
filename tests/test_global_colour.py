"""Global colour draws of the colorization app (``cinn.apps.colorization.global_colour``):
one saturation factor and hue rotation per sample, for training crops and samples."""
import numpy as np
import pytest

from cinn.cli import main
from cinn.apps.colorization.global_colour import (check_hue, check_saturation, global_draws,
                                             recolour)
from cinn.apps.colorization.infer import colorize, sample_ab
from helpers import to_np
from test_colorization import picture, tiny  # noqa: F401  (the tiny model fixture)


def draws(n, seed, saturation=(0.6, 2.4), hue=40.0):
    return tuple(to_np(d) for d in global_draws(n, seed, saturation, hue))


def test_draws_lie_in_their_ranges_and_spread_over_them():
    scale, degrees = draws(64, 0)
    assert scale.shape == degrees.shape == (64,) and scale.dtype == np.float32
    assert scale.min() >= 0.6 - 1e-6 and scale.max() <= 2.4 + 1e-6
    assert degrees.min() >= -40 and degrees.max() <= 40
    # evenly spread: for N = 64 (and every power of two) each of N equal parts of the
    # log-saturation range holds one draw; the angles of 9 draws: one in each ninth
    for seed in (0, 1, 12345):
        u = np.log(draws(64, seed)[0] / 0.6) / np.log(4.0)
        np.testing.assert_array_equal(np.histogram(u, bins=64, range=(0, 1))[0], 1)
        v = (draws(9, seed)[1] + 40) / 80
        np.testing.assert_array_equal(np.histogram(v, bins=9, range=(0, 1))[0], 1)


def test_draws_depend_on_seed_and_index_only():
    a, b = draws(8, 3), draws(3, 3)
    np.testing.assert_array_equal(a[0][:3], b[0])      # sample i's draw does not depend on n
    np.testing.assert_array_equal(a[1][:3], b[1])
    c = draws(8, 4)
    assert not np.allclose(a[0], c[0]) and not np.allclose(a[1], c[1])
    np.testing.assert_array_equal(draws(8, 3)[0], a[0])
    one, zero = draws(5, 7, saturation=(1.0, 1.0), hue=0.0)
    np.testing.assert_array_equal(one, 1.0)
    np.testing.assert_array_equal(zero, 0.0)


def test_recolour_scales_and_rotates_ab_of_each_image():
    rng = np.random.default_rng(0)
    ab = rng.normal(0, 0.2, (3, 4, 5, 2)).astype("float32")
    out = to_np(recolour(ab, np.array([2.0, 1.0, 0.5]), np.array([0.0, 90.0, -30.0])))
    np.testing.assert_allclose(out[0], 2 * ab[0], rtol=1e-6)
    np.testing.assert_allclose(out[1], np.stack([-ab[1, ..., 1], ab[1, ..., 0]], -1),
                               atol=1e-6)           # 90 degrees: (a, b) -> (-b, a)
    z, zo = ab[2, ..., 0] + 1j * ab[2, ..., 1], out[2, ..., 0] + 1j * out[2, ..., 1]
    np.testing.assert_allclose(zo, 0.5 * np.exp(-1j * np.pi / 6) * z, atol=1e-6)


@pytest.mark.parametrize("bad", [[0, 1], [2, 1], [1], "x", [1, float("inf")]])
def test_bad_saturation_is_refused(bad):
    with pytest.raises(ValueError, match="--saturation must be two numbers"):
        check_saturation(bad, "--saturation")


@pytest.mark.parametrize("bad", [-1, 181, "x", [1, 2]])
def test_bad_hue_is_refused(bad):
    with pytest.raises(ValueError, match="hue must be a number of degrees"):
        check_hue(bad)


def test_samples_are_the_flows_samples_mapped_by_their_draws(tiny):  # noqa: F811
    model, _ = tiny
    from cinn.apps.colorization.infer import l_of

    cond = l_of(picture(16, 24))
    plain = sample_ab(model, cond, n=5, temperature=0.7, seed=2, saturation=None, hue=0)
    asked = dict(saturation=(0.6, 2.4), hue=40.0)          # the former default draws
    drawn = sample_ab(model, cond, n=5, temperature=0.7, seed=2, **asked)
    scale, degrees = draws(5, 2)
    np.testing.assert_allclose(drawn, to_np(recolour(plain, scale, degrees)), atol=1e-5)
    # the same samples however they are chunked or compiled
    np.testing.assert_allclose(sample_ab(model, cond, n=5, temperature=0.7, seed=2,
                                         batch_size=2, **asked), drawn, atol=1e-5)
    np.testing.assert_allclose(sample_ab(model, cond, n=5, temperature=0.7, seed=2,
                                         compiled=True, **asked), drawn, atol=1e-5)
    # no seed: fresh draws from the given ranges; one scale and no hue at T = 0 leave
    # nothing to chance, so the samples equal those of any seed
    pic = picture(16, 24)
    out = colorize(model, pic, n=3, temperature=0, seed=None, saturation=(2.0, 2.0), hue=0)
    ref = colorize(model, pic, n=1, temperature=0, seed=5, saturation=(2.0, 2.0), hue=0)
    assert out.shape == (3, 16, 24, 3)
    assert all(np.array_equal(one, ref[0]) for one in out)


def _one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cinn: error:") and "\n" not in err, err
    return err


def test_command_line_options(tmp_path, capsys, tiny):  # noqa: F811
    import cv2

    _, weights = tiny
    pic = tmp_path / "pic.png"
    cv2.imwrite(str(pic), picture(16, 16))
    base = ["colorize", str(pic), "-n", "2", "-o", str(tmp_path / "out"), "--weights",
            str(weights), "--save-samples"]
    assert "--saturation must be two numbers" in _one_line_error(
        capsys, base + ["--saturation", "0", "2"])
    assert "--hue must be a number of degrees" in _one_line_error(capsys, base + ["--hue", "200"])
    assert "--saturation" in _one_line_error(capsys, base + ["--saturation", "2"])
    assert not (tmp_path / "out").exists()
    assert main(base + ["--saturation", "1", "1", "--hue", "0", "--temperature", "0"]) == 0
    a, b = (cv2.imread(str(tmp_path / "out" / f"pic_sample{k}.png")) for k in (0, 1))
    assert np.array_equal(a, b)                       # T = 0 without draws: one colouring
    assert main(base + ["--temperature", "0"]) == 0
    a, b = (cv2.imread(str(tmp_path / "out" / f"pic_sample{k}.png")) for k in (0, 1))
    assert np.array_equal(a, b)                       # the defaults: no draws either
    for asked in (["--saturation", "0.6", "2.4", "--hue", "40"], ["--hue", "30"],
                  ["--saturation", "0.5", "2"]):
        assert main(base + ["--temperature", "0", *asked]) == 0
        c, d = (cv2.imread(str(tmp_path / "out" / f"pic_sample{k}.png")) for k in (0, 1))
        assert not np.array_equal(c, d), asked        # the draws asked for: two colourings
        assert not np.array_equal(c, a) or not np.array_equal(d, a), asked


def test_default_sampling_applies_no_colour_draw(tiny):  # noqa: F811
    """The defaults give the flow's own samples (no post-hoc draw): for a flow of any
    size those of ``model.sample``, for a flow with global latents those decoded from
    the seed's latents scaled by the default temperatures (1.15 global, 0.5 local)."""
    from cinn.apps.colorization.defaults import (DEFAULT_LOCAL_TEMPERATURE, DEFAULT_SATURATION,
                                                 DEFAULT_HUE, DEFAULT_TEMPERATURE)
    from cinn.apps.colorization.guided import guided_upsample, shrink_l
    from cinn.apps.colorization.infer import l_of, latent_scale
    from cinn.apps.colorization.model import build_model
    from cinn.model import draw_latents
    from helpers import randomize

    assert (DEFAULT_TEMPERATURE, DEFAULT_LOCAL_TEMPERATURE) == (1.15, 0.5)
    assert DEFAULT_SATURATION is None and DEFAULT_HUE == 0
    model, _ = tiny
    cond = l_of(picture(16, 24))
    own = to_np(model.sample(cond[None], n=3, temperature=0.7, seed=2))[0]
    np.testing.assert_allclose(sample_ab(model, cond, n=3, temperature=0.7, seed=2), own,
                               atol=1e-5)
    # a flow without global latents: every latent at the local temperature by default
    np.testing.assert_allclose(sample_ab(model, cond, n=3, seed=2), to_np(model.sample(
        cond[None], n=3, temperature=DEFAULT_LOCAL_TEMPERATURE, seed=2))[0], atol=1e-5)
    flow = build_model({"levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1},
                        "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1, "size": 16,
                        "global_blocks": 1, "global_hidden": 8, "global_depth": 1,
                        "global_features": 4, "global_widths": [4]})
    randomize(flow, scale=0.05, seed=3)
    cond = l_of(picture(20, 28, seed=1))
    z = draw_latents(3, 16 * 16 * 2, 4) * latent_scale(flow, (16, 16, 2), DEFAULT_TEMPERATURE,
                                                     DEFAULT_LOCAL_TEMPERATURE)
    small = to_np(flow.decode(z, np.repeat(shrink_l(cond, 16)[None], 3, axis=0)))
    own = np.stack([guided_upsample(one, cond) for one in small])
    np.testing.assert_allclose(sample_ab(flow, cond, n=3, seed=4), own, atol=1e-4)
    pic = picture(20, 28, seed=1)
    plain = colorize(flow, pic, n=3, seed=4)
    assert np.array_equal(plain, colorize(flow, pic, n=3, temperature=1.15, seed=4,
                                          local_temperature=0.5, saturation=None, hue=0))
    assert not np.array_equal(plain, colorize(flow, pic, n=3, seed=4, hue=40))
