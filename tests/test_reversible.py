"""Backpropagation by inversion (``backprop="inverse"``, ``cinn.reversible``): the
gradients equal standard backpropagation's (3-level model, every app's
architecture, mixed precision, a MirroredStrategy), a training run follows the
same loss curve, ActNorm's data-dependent init and the config round trip work.

This file doubles as the script of the distribution test's child process:
``python tests/test_reversible.py mirrored OUT``.
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

LEVELS = [  # every kind of block: Haar, squeeze, transition, injector, both splits
    {"downsample": "haar", "blocks": 1, "subnet": {"hidden": 16}},
    {"downsample": "squeeze", "blocks": 1, "injector": True, "split": "prior",
     "subnet": {"hidden": 16}},
    {"downsample": "haar", "transition": True, "blocks": 1, "permute": "random",
     "split": "plain", "subnet": {"hidden": 16}},
]


def three_level_model(policy=None, backprop="standard"):
    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    levels = LEVELS if policy is None else [
        {**lv, "subnet": {**lv["subnet"], "dtype": policy}} for lv in LEVELS]
    return ConditionalINN((None, None, 2), (None, None, 1), levels, seed=0, backprop=backprop,
                          cond_net=ConditionNet([-1, -2, -3], channels=8, hidden=16,
                                                trunk_blocks=1, dtype=policy))


def batch(x_shape, c_shape, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n,) + x_shape).astype("float32"),
            rng.standard_normal((n,) + c_shape).astype("float32"))


def prepare(model, noise=0.01):
    """Noisy weights: every block does something (ActNorm's data-dependent init is
    left out: one more eager pass, which JAX compiles op by op)."""
    from helpers import randomize

    randomize(model, noise, seed=1)
    return model


def jax_loss(model, x, c):
    """JAX: mean bits/dim as a pure function of the trainable weights' values, and
    those values."""
    trainable, other = model.trainable_variables, model.non_trainable_variables

    def loss(values):
        mapping = list(zip(trainable, values)) + [(v, v.value) for v in other]
        with keras.StatelessScope(state_mapping=mapping):
            return ops.mean(model.bits_per_dim(*model.encode(x, c)))

    return loss, [v.value for v in trainable]


def loss_and_gradients(model, x, c):
    """Mean bits/dim and its gradient for every trainable weight."""
    if BACKEND == "jax":
        import jax

        loss, values = jax_loss(model, x, c)
        value, grads = jax.jit(jax.value_and_grad(loss))(values)
    else:
        import tensorflow as tf

        # eagerly: tracing a tf.function costs more than one eager pass (the
        # training tests below run the inverse mode in graph mode)
        with tf.GradientTape() as tape:
            value = ops.mean(model.bits_per_dim(*model.encode(x, c)))
        grads = tape.gradient(value, model.trainable_variables)
    return float(value), [np.asarray(ops.convert_to_numpy(g)) for g in grads]


def relative_errors(model, x, c):
    """Per trainable weight tensor: |g_inverse - g_standard| / |g_standard|."""
    model.backprop = "standard"
    loss_std, g_std = loss_and_gradients(model, x, c)
    model.backprop = "inverse"
    loss_inv, g_inv = loss_and_gradients(model, x, c)
    model.backprop = "standard"
    assert abs(loss_inv - loss_std) <= 1e-5 * abs(loss_std)
    errors = {}
    for v, a, b in zip(model.trainable_variables, g_std, g_inv):
        norm = np.linalg.norm(a)
        assert norm > 0, f"{v.path}: no gradient; the test would not test it"
        errors[v.path] = float(np.linalg.norm(b - a) / norm)
    return errors


def test_three_level_model_gradients_equal_standard_backprop():
    model = three_level_model()
    x, c = batch((16, 16, 2), (16, 16, 1))
    errors = relative_errors(prepare(model), x, c)
    assert len(errors) == len(model.trainable_variables) > 50  # flow and cond_net
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])


@pytest.mark.skipif(BACKEND != "jax", reason="XLA's memory analysis of the compiled "
                    "program; TensorFlow's executor does not follow the ordering (README)")
def test_activation_memory_does_not_grow_with_depth():
    """XLA's planned temporaries of the loss-and-gradient program (the activations):
    with the inverse mode the same at 2 and 8 steps per level, so the ordering of
    ``Segment.backward`` holds (the running sum of the condition gradients included);
    with standard backpropagation they grow with depth."""
    import jax

    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    x, c = batch((32, 32, 2), (32, 32, 1), n=4)
    temps = {}
    for mode in ("standard", "inverse"):
        for depth in (2, 8):
            levels = [{"downsample": "haar", "blocks": depth, "subnet": {"hidden": 16}},
                      {"downsample": "haar", "blocks": depth, "split": "plain",
                       "subnet": {"hidden": 16}}]
            model = ConditionalINN((None, None, 2), (None, None, 1), levels, seed=0,
                                   backprop=mode,
                                   cond_net=ConditionNet([-1, -2], channels=8, hidden=16))
            loss, values = jax_loss(model, x, c)
            compiled = jax.jit(jax.grad(loss)).lower(values).compile()
            temps[mode, depth] = compiled.memory_analysis().temp_size_in_bytes
    assert temps["standard", 8] > 2 * temps["standard", 2], temps
    # (the condition gradients summed at the end instead: +5% at 8 steps)
    assert temps["inverse", 8] <= 1.01 * temps["inverse", 2], temps
    assert temps["inverse", 8] < temps["standard", 8] / 2, temps


APPS = [  # (app, config variant, x shape, condition shape): small inputs
    ("colorization", None, (16, 16, 2), (16, 16, 1)),
    ("inpainting", None, (16, 16, 3), (16, 16, 4)),
    ("superres", None, (4, 4, 45), (4, 4, 3)),     # 4x: detail coefficients on the LR grid
]


@pytest.mark.parametrize("app,variant,x_shape,c_shape", APPS,
                         ids=["colorization", "inpainting", "superres"])
def test_app_architectures_gradients_equal_standard_backprop(app, variant, x_shape, c_shape):
    import importlib

    from cinn.apps.common.config import load_config

    task = importlib.import_module(f"cinn.apps.{app}.task")
    model = task.build_model(load_config(app, variant=variant)["model"])
    x, c = batch(x_shape, c_shape)
    errors = relative_errors(prepare(model), x, c)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])


def toy_model(backprop, policy=None, levels=2):
    """Haar levels of 3 steps, a prior split between levels, a conditioning net."""
    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    subnet = {"hidden": 16} if policy is None else {"hidden": 16, "dtype": policy}
    return ConditionalINN((8, 8, 2), (8, 8, 1), [
        {"downsample": "haar", "blocks": 3, "subnet": subnet,
         "split": "prior" if i < levels - 1 else None} for i in range(levels)],
        seed=0, backprop=backprop, cond_net=ConditionNet(
            [-(i + 1) for i in range(levels)], channels=4, hidden=8, trunk_blocks=1,
            dtype=policy))


def test_mixed_precision_subnets():
    """bfloat16 trunks and conditioning net: the recomputed inputs carry the
    inverse's bfloat16 round-off (invertible to ~1e-3, see test_model) and the
    condition features' gradient is summed in float32 (standard backprop sums it
    in bfloat16), so the gradients agree to 3e-2 (measured: 1e-2) rather than 1e-4."""
    model = toy_model("standard", "mixed_bfloat16", levels=1)
    x, c = batch((8, 8, 2), (8, 8, 1), n=4)
    errors = relative_errors(prepare(model), x, c)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 3e-2, (worst, errors[worst])


def test_training_follows_the_same_loss_curve():
    """200 Adam steps from the same weights on the same batches: the per-step
    losses of the two modes agree to 1e-3 bits/dim (measured: ~1e-6).

    Adam's epsilon is 1e-3: with the default 1e-7 this toy's trajectory is
    chaotic, Adam blows the round-off of near-zero gradients up to full-size
    steps, and a 1e-7 relative change of the initial weights moves the standard
    mode's own curve by 1e-2 within 100 steps (as much as the inverse mode does).
    """
    from toy_flow import toy_data

    x, c = toy_data(n=64)
    xs, cs = np.concatenate([x] * 50), np.concatenate([c] * 50)  # 200 batches of 16

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))  # the running mean of the epoch

    curves = {}
    for mode in ("standard", "inverse"):
        keras.utils.set_random_seed(0)
        model = toy_model(mode, levels=1)
        model.initialize(x[:32], c[:32])
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-3))
        rec = Record()
        rec.means = []
        model.fit((xs, cs), batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[rec])
        means = np.array(rec.means, np.float64)
        steps = np.arange(1, len(means) + 1)
        curves[mode] = steps * means - np.concatenate([[0], (steps * means)[:-1]])
    std, inv = curves["standard"], curves["inverse"]
    assert len(std) == 200 and std[-1] < std[0] - 0.3  # it learned
    np.testing.assert_allclose(inv, std, atol=1e-3, rtol=0)


def test_actnorm_init_config_and_errors():
    from cinn import ConditionalINN

    model = toy_model("inverse", levels=1)
    x, c = batch((8, 8, 2), (8, 8, 1), n=16)
    model.initialize(x, c)  # data-dependent init runs the plain loop, eagerly
    assert model.is_initialized
    first = model.flow_layers[0][1]  # the first ActNorm, after the Haar downsampling
    h = first(model.flow_layers[0][0](x)[0])[0]
    np.testing.assert_allclose(np.std(ops.convert_to_numpy(h), axis=(0, 1, 2)), 1, atol=1e-3)
    z, log_det = model.encode(x, c)
    np.testing.assert_allclose(ops.convert_to_numpy(model.decode(z, c)), x, atol=1e-4)

    config = model.get_config()
    assert config["backprop"] == "inverse"
    small = ConditionalINN((4,), levels=[{"blocks": 1}], backprop="inverse")
    assert ConditionalINN.from_config(small.get_config()).backprop == "inverse"
    assert ConditionalINN((4,), levels=[{"blocks": 1}], backprop=None).backprop == "standard"
    with pytest.raises(ValueError, match="backprop must be one of standard, inverse"):
        ConditionalINN((4,), backprop="reverse")


def test_train_config_and_cli_select_the_mode():
    from types import SimpleNamespace

    from cinn.cli import build_parser
    from cinn.apps.common.train import apply_overrides, build

    args = build_parser().parse_args(["train", "colorization", "--data", "d",
                                      "--backprop", "inverse"])
    assert args.backprop == "inverse"
    cfg = {"model": {"levels": 2, "blocks": 1}, "data": {}, "train": {}}
    cfg = apply_overrides(cfg, args)
    assert cfg["train"]["backprop"] == "inverse"
    task = SimpleNamespace(build_model=__import__("cinn.apps.colorization.task",
                                                  fromlist=["x"]).build_model)
    assert build(task, cfg).backprop == "inverse"
    assert build(task, {"model": cfg["model"], "train": {}}).backprop == "standard"
    with pytest.raises(ValueError, match="backprop"):
        build(task, {"model": cfg["model"], "train": {"backprop": "sideways"}})


# -- tf.distribute -------------------------------------------------------------------
def _mirrored_child(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from toy_flow import toy_data

    from cinn.distribute import make_distribution
    from cinn.training import train

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    x, c = toy_data(n=32)
    result = {}
    # one device: Keras' step XLA-compiled (cinn.training's default); mirrored: not
    for name, mode in (("one", "standard"), ("one_inverse", "inverse"),
                       ("mirrored", "inverse")):
        dist = make_distribution(name.split("_")[0])
        keras.utils.set_random_seed(0)
        rec = Record()
        rec.losses = []
        with dist.scope():
            model = toy_model(mode, levels=1)
            train(model, (x, c), epochs=2, batch_size=16, learning_rate=1e-2, verbose=0,
                  callbacks=[rec], seed=0, tensorboard=False)
        result[name] = {"replicas": dist.num_replicas, "losses": rec.losses,
                        "weights": [np.asarray(w).tolist() for w in model.get_weights()[:4]]}
    with open(out, "w") as f:
        json.dump(result, f)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs TensorFlow")
def test_xla_and_mirrored_strategy_inverse_match_one_device_standard(tmp_path):
    from toy_flow import stop_process

    out = tmp_path / "mirrored.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "mirrored", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        proc.wait(timeout=240)
    finally:
        log = stop_process(proc)
    assert proc.returncode == 0, log[-3000:]
    res = json.loads(out.read_text())
    one = res["one"]
    assert one["replicas"] == 1 and res["mirrored"]["replicas"] == 2
    assert len(one["losses"]) == 4 and one["losses"][-1] < one["losses"][0]
    for run in ("one_inverse", "mirrored"):
        np.testing.assert_allclose(res[run]["losses"], one["losses"], atol=1e-4, rtol=0)
        for a, b in zip(res[run]["weights"], one["weights"]):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    if sys.argv[1] == "mirrored":
        _mirrored_child(sys.argv[2])
