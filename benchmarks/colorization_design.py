"""Colorization conditioning networks compared: receptive field, parameters, step time.

    KERAS_BACKEND=jax nice -n 15 python -m benchmarks.colorization_design \
        configs/colorization.yaml configs/colorization_unet.yaml --steps 10

For each config's model: the receptive field of the conditioning features fed to
each flow level, in pixels of the input L (measured, not derived: the extent of
the non-zero gradient of one feature at the centre of a 256x256 input; with a
global context every feature depends on every pixel, so it is also measured with
the context switched off), the parameters (conditioning network and total), and
the time of a training step (JAX ``jit``, batch and crop of the config, median of
``--steps`` steps after 3 warm-up steps). JAX backend only.
"""
import argparse
import json
import time

import numpy as np


def receptive_fields(model, size=256):
    """Per level: (height, width) in input pixels of the region that the feature
    vector at the centre of that level's grid depends on."""
    import jax
    import jax.numpy as jnp

    c0 = jnp.asarray(np.random.default_rng(0).standard_normal((1, size, size, 1)), "float32")
    out = []
    for level in range(len(model.levels)):
        def f(c, level=level):
            feats = model.condition_features(c)
            feat = feats[level]
            h, w = feat.shape[1], feat.shape[2]
            return jnp.sum(feat[0, h // 2, w // 2, :])
        g = np.abs(np.asarray(jax.grad(f)(c0)))[0, :, :, 0]
        rows, cols = np.nonzero(g > 0)
        out.append((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    return out


def step_time(model, cfg, steps):
    import keras

    crop, batch = int(cfg["data"].get("crop", 64)), int(cfg["data"].get("batch_size", 8))
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal((batch, crop, crop, 2))).astype("float32")
    c = rng.uniform(-1, 1, (batch, crop, crop, 1)).astype("float32")
    if hasattr(model, "initialize"):
        model.initialize(x, c)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, clipnorm=1.0))
    for _ in range(3):
        model.train_on_batch((x, c))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch((x, c))
        times.append(time.perf_counter() - t)
    return float(np.median(times)), batch, crop


def measure(config, steps):
    import keras

    from cinn.apps.colorization.model import build_model
    from cinn.apps.common.config import load_config

    cfg = load_config("colorization", config)
    keras.utils.set_random_seed(0)
    model = build_model(cfg["model"])
    row = {"config": config, "params": model.count_params(),
           "cond_params": model.cond_net.count_params(),
           "receptive_field": receptive_fields(model) if hasattr(model, "levels") else None}
    if cfg["model"].get("cond_net") == "unet" and cfg["model"].get("cond_context", True):
        blind = build_model({**cfg["model"], "cond_context": False})
        row["receptive_field_without_context"] = receptive_fields(blind)
    row["step_s"], row["batch"], row["crop"] = step_time(model, cfg, steps)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    for config in args.configs:
        print(json.dumps(measure(config, args.steps)), flush=True)


if __name__ == "__main__":
    main()
