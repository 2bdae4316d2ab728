"""A tiny conditional image flow, its data, and child-process handling, shared by
the training tests.

Imports nothing heavy at module level: child processes of the distribution
tests configure TensorFlow devices before ``cinn`` (and Keras) are imported.
"""
import os
import signal
import subprocess

import numpy as np


def small_model():
    from cinn import ConditionalINN

    return ConditionalINN((8, 8, 2), (8, 8, 1),
                          [{"blocks": 1, "permute": "random", "subnet": {"hidden": 8}}], seed=0)


def toy_data(n=64):
    rng = np.random.default_rng(0)
    c = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    x = np.concatenate([c, 0.5 * c], -1) + 0.3 * rng.standard_normal((n, 8, 8, 2))
    return x.astype("float32"), c


def stop_process(proc):
    """Kill a child started with ``start_new_session=True`` (and its group); its output."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        return proc.communicate(timeout=10)[0] or ""
    except subprocess.TimeoutExpired:
        return ""
