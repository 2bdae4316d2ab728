"""Distributed training: MirroredStrategy over two logical CPUs matches one device,
two MultiWorkerMirroredStrategy workers on 127.0.0.1 end with identical weights,
strategy selection, and JAX's DataParallel.

Each distributed run happens in a child process (devices must be configured
before TensorFlow or JAX initialises them); this file doubles as the child's
script: ``python tests/test_distribute.py MODE OUT``.
"""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from toy_flow import small_model, stop_process, toy_data

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs TensorFlow")


def _run_training(name, out_dir=None, epochs=2, clip=None):
    """Train a small model under strategy ``name``; per-step logged losses + weights."""
    import keras

    from cinn.distribute import make_distribution
    from cinn.training import train

    class Record(keras.callbacks.Callback):
        losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    dist = make_distribution(name)  # first: a multi-worker strategy precedes any op
    keras.utils.set_random_seed(0)
    rec = Record()
    rec.losses = []
    x, c = toy_data()
    with dist.scope():
        model = small_model()
        train(model, (x, c), epochs=epochs, batch_size=16, learning_rate=1e-2, verbose=0,
              callbacks=[rec], out_dir=out_dir, checkpoint_every=2, seed=0,
              global_clipnorm=clip)
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    return dist, rec.losses, weights, steps


def _child(mode, out):
    if mode == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        result = {}
        for name in ("one", "mirrored"):
            # clipping that acts: it must see the gradient of the global batch
            dist, losses, weights, steps = _run_training(name, clip=0.05)
            result[name] = {"replicas": dist.num_replicas, "losses": losses, "steps": steps}
            np.savez(f"{out}.{name}.npz", *weights)
    elif mode == "multiworker":
        dist, losses, weights, steps = _run_training("multiworker", os.environ["RUN_DIR"],
                                                     epochs=1)
        result = {"replicas": dist.num_replicas, "chief": dist.is_chief, "losses": losses,
                  "steps": steps}
        np.savez(f"{out}.npz", *weights)
        if dist.is_chief:  # the same training on one device, for comparison
            result["one_device_losses"] = _run_training("one", epochs=1)[1]
    elif mode == "jax":
        dist, losses, weights, steps = _run_training("auto", epochs=1)
        result = {"name": dist.name, "replicas": dist.num_replicas, "losses": losses,
                  "steps": steps}
    with open(out, "w") as f:
        json.dump(result, f)


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **extra)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(mode, out, env):
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), mode, str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _load(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]


@tf_only
def test_mirrored_two_cpus_matches_one_device(tmp_path):
    out = tmp_path / "mirrored.json"
    proc = _start("mirrored", out, _env(KERAS_BACKEND="tensorflow"))
    try:
        proc.wait(timeout=240)
    finally:
        log = stop_process(proc)
    assert proc.returncode == 0, log[-3000:]
    res = json.loads(out.read_text())
    one, mirrored = res["one"], res["mirrored"]
    assert one["replicas"] == 1 and mirrored["replicas"] == 2
    assert one["steps"] == mirrored["steps"] == 8
    # the same loss after every step (global batch 16 = 2 x 8), within 1e-4 ...
    np.testing.assert_allclose(mirrored["losses"], one["losses"], atol=1e-4, rtol=0)
    assert one["losses"][-1] < one["losses"][0] - 0.02  # ... and it did learn
    # ... and the same weights at the end (an unscaled loss would double the gradients)
    for a, b in zip(_load(f"{out}.mirrored.npz"), _load(f"{out}.one.npz")):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)


@tf_only
def test_two_workers_end_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for i in range(2):
            cfg = {"cluster": cluster, "task": {"type": "worker", "index": i}}
            env = _env(KERAS_BACKEND="tensorflow", TF_CONFIG=json.dumps(cfg),
                       RUN_DIR=str(tmp_path / "run"))
            procs.append(_start("multiworker", tmp_path / f"w{i}.json", env))
        deadline = time.time() + 240
        for p in procs:
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        logs = [stop_process(p) for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    res = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2)]
    assert [r["replicas"] for r in res] == [2, 2]
    assert [r["chief"] for r in res] == [True, False]
    assert res[0]["steps"] == res[1]["steps"] == 4  # 64 samples / global batch 16
    np.testing.assert_allclose(res[0]["losses"], res[1]["losses"], atol=1e-6)
    # each step is one step on the global batch (split 8 + 8), as on one device
    np.testing.assert_allclose(res[0]["losses"], res[0]["one_device_losses"], atol=1e-4)
    w0, w1 = _load(tmp_path / "w0.json.npz"), _load(tmp_path / "w1.json.npz")
    assert len(w0) == len(w1) > 0
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    # only the chief wrote checkpoints; they are there and load
    steps = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert "step-000004.json" in steps and "step-000002.json" in steps


@pytest.mark.skipif(BACKEND != "jax", reason="JAX DataParallel")
def test_jax_data_parallel_over_two_devices(tmp_path):
    out = tmp_path / "jax.json"
    env = _env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    proc = _start("jax", out, env)
    try:
        proc.wait(timeout=180)
    finally:
        log = stop_process(proc)
    assert proc.returncode == 0, log[-3000:]
    res = json.loads(out.read_text())
    assert res["name"] == "data_parallel" and res["replicas"] == 2
    assert res["steps"] == 4 and all(np.isfinite(res["losses"]))


def test_strategy_selection_and_errors(monkeypatch):
    import keras

    from cinn.distribute import make_distribution
    from cinn.errors import CinnError

    assert make_distribution("one").num_replicas == 1
    with pytest.raises(CinnError, match="unknown strategy"):
        make_distribution("ring")
    if keras.backend.backend() == "tensorflow":
        monkeypatch.setenv("TF_CONFIG", "{not json")
        with pytest.raises(CinnError, match="TF_CONFIG"):
            make_distribution("multiworker")
        monkeypatch.delenv("TF_CONFIG")
        with pytest.raises(CinnError, match="TF_CONFIG"):
            make_distribution("multiworker")
        # no GPUs and one CPU device here: auto trains on one device
        assert make_distribution("auto").name == "one"
    else:
        with pytest.raises(CinnError, match="tensorflow backend"):
            make_distribution("multiworker")
        dist = make_distribution("auto")
        assert dist.name in ("one", "data_parallel")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
