"""Smoke test of the benchmark's pure parts (statistics, FLOP count, report); no timing."""
import pytest

from benchmarks import bench


def test_summarize_and_paired_ratios():
    assert bench.summarize([3, 1, 2, None]) == {"median": 2, "min": 1, "max": 3, "n": 3}
    assert bench.summarize([]) is None
    a = [{"round": 0, "v": 2.0}, {"round": 1, "v": 3.0}, {"round": 2, "v": 1.0}]
    b = [{"round": 0, "v": 1.0}, {"round": 1, "v": 2.0}]  # round 2 missing: not paired
    assert bench.paired_ratios(a, b, "v") == [2.0, 1.5]


def test_step_times_skip_warmup_epochs():
    epochs = [[(0, 0), (5, 1)], [(10, 2), (11, 2.5), (13, 3.5)]]
    assert bench.step_times(epochs, warmup_epochs=1) == ([1, 2], [0.5, 1.0])


def test_jaxpr_flops_counts_conv_and_matmul():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def f(x, k, w):  # 3x3 conv 4 -> 8 channels on 2 x 6 x 6 (SAME), then 8 -> 5 matmul
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.tanh(y) @ w

    args = (jnp.zeros((2, 6, 6, 4)), jnp.zeros((3, 3, 4, 8)), jnp.zeros((8, 5)))
    conv, mm = 2 * (2 * 6 * 6 * 8) * (4 * 9), 2 * (2 * 6 * 6 * 5) * 8
    assert bench.jaxpr_flops(jax.make_jaxpr(f)(*args)) == conv + mm
    # forward + backward of the conv w.r.t. its kernel only: forward, kernel gradient
    grad = jax.make_jaxpr(jax.grad(lambda k: f(args[0], k, args[2]).sum()))(args[1])
    assert bench.jaxpr_flops(grad) == 2 * conv + 2 * mm


def test_report_renders_every_table():
    rows = [{"kind": "peak", "lib": "numpy", "gflops": 100.0, "phase": "start"},
            {"kind": "flops", "arch": "colorization", "batch": 8, "twin_train_flops": 2e9,
             "twin_sample_flops": 5e8, "cinn_train_flops": 2.02e9, "cinn_sample_flops": 5e8},
            {"kind": "appflops", "app": "colorization", "app_flops": 3e9, "bare_flops": 2e9,
             "batch": 8}]
    for rnd, (f, c) in enumerate([(10.0, 15.0), (12.0, 15.0)]):
        for fw, be, v in (("freia", "torch", f), ("cinn", "jax", c)):
            rows.append({"kind": "bench", "framework": fw, "backend": be,
                         "arch": "colorization", "batch": 8, "device": "cpu",
                         "precision": "float32", "round": rnd, "train_steps_per_s": v,
                         "train_step_s": 1 / v, "train_cpu_s": 2 / v,
                         "sample_images_per_s": 10 * v, "sample_pass_s": 0.8 / v,
                         "sample_cpu_s": 1.6 / v, "peak_mem_mb": 1000.0})
        rows.append({"kind": "app", "app": "colorization", "backend": "jax", "batch": 8,
                     "round": rnd, "app_steps_per_s": 4.0, "app_sustained_steps_per_s": 3.5,
                     "bare_steps_per_s": 5.0})
    text = bench.render_report(rows, {"date": "today", "command": "python -m benchmarks.bench",
                                      "cpu_model": "test CPU", "cpus": 2})
    # FrEIA: median 11 step/s x 2 GFLOP = 22 GFLOP/s = 22% of the 100 GFLOP/s peak
    assert "11.0 [10.0-12.0] step/s = 22.0 GFLOP/s (22% of peak)" in text
    assert "1.38x [1.25-1.50]" in text  # paired ratios 1.5 and 1.25
    assert "| colorization | 8 | 2.000 | 2.020 | 1.010 |" in text
    # app: 4 step/s x 3 GFLOP = 12 GFLOP/s; bare 5 x 2 = 10; app / bare = 120%
    assert "| 12.0 | 12% |" in text and "120%" in text


def test_bare_flow_trains_as_fit_runs_it():
    """The bare flow's timed step is Keras' ``fit`` step: one time per timed step, one
    optimizer step per step (warm-up included), and a level without condition features
    (None) is left out of the ``fit`` data and put back by the flow."""
    import numpy as np

    spec = {"levels": [{"downsample": "haar", "blocks": 1, "split": "plain",
                        "subnet": {"type": "conv", "hidden": 4, "depth": 1}},
                       {"downsample": "haar", "blocks": 1, "split": None,
                        "subnet": {"type": "conv", "hidden": 4, "depth": 1}}],
            "x_shape": (8, 8, 2), "cond_channels": [None, 3], "clamp": 2.0}
    x, feats = bench._cinn_inputs(spec, batch=2)
    assert feats[0] is None and feats[1].shape == (2, 2, 2, 3)
    out, model = bench.time_cinn_flow(spec, x, feats, steps=3, sample=False)
    assert len(out["train_wall"]) == len(out["train_cpu"]) == 3
    assert all(t > 0 for t in out["train_wall"])
    assert model.optimizer.iterations.numpy() == bench.WARMUP_STEPS + 3
    assert model.condition_features((feats[1],))[0] is None
    assert np.isfinite(np.asarray(model.log_prob(x, feats))).all()
