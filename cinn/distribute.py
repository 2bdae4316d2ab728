"""Data-parallel training: pick a distribution strategy for the Keras backend in use.

``make_distribution(name)`` with ``name`` one of ``one | mirrored | multiworker | auto``:

* TensorFlow backend: ``mirrored`` is ``tf.distribute.MirroredStrategy`` over the
  local GPUs (or, without GPUs, over the logical CPU devices when there are
  several); ``multiworker`` is ``tf.distribute.MultiWorkerMirroredStrategy``
  configured by the ``TF_CONFIG`` environment variable; ``auto`` is
  ``multiworker`` when ``TF_CONFIG`` names several workers, ``mirrored`` when
  there are several GPUs, else ``one`` (no distribution).
* JAX backend: ``mirrored`` and ``auto`` use ``keras.distribution.DataParallel``
  over the local devices (``one`` when there is a single device);
  ``multiworker`` is not supported.

Build the model and the optimizer, and call ``fit``, inside ``dist.scope()``.
The batch size given to the data pipeline is the GLOBAL batch: every step,
each of the ``dist.num_replicas`` replicas gets ``batch / num_replicas`` of it,
gradients are summed over replicas of per-replica losses that are divided by
the replica count (``ConditionalINN.compute_loss``), so one step equals one
step on one device with the whole batch.

TensorFlow is imported lazily: on JAX (even without TensorFlow installed) this
module only touches ``keras.distribution``.
"""
import contextlib
import json
import os
import sys

import keras

from cinn import _keras_compat
from cinn.errors import CinnError

STRATEGIES = ("auto", "one", "mirrored", "multiworker")


class Distribution:
    """What ``make_distribution`` chose.

    Attributes:
        name: ``one``, ``mirrored``, ``multiworker`` or ``data_parallel`` (JAX).
        num_replicas: replicas that share each global batch.
        strategy: the ``tf.distribute.Strategy`` (TensorFlow) or the
            ``keras.distribution.DataParallel`` (JAX); ``None`` for ``one``.
        is_chief: whether this process writes checkpoints and logs.
        devices: the devices used (strings).
    """

    def __init__(self, name, num_replicas=1, strategy=None, is_chief=True, devices=()):
        self.name = name
        self.num_replicas = int(num_replicas)
        self.strategy = strategy
        self.is_chief = bool(is_chief)
        self.devices = tuple(str(d) for d in devices)

    def scope(self):
        """Context in which to build the model and optimizer and to train."""
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def check_batch(self, batch_size):
        """Raise ``CinnError`` when the global batch cannot be split evenly."""
        if batch_size is not None and int(batch_size) % self.num_replicas:
            raise CinnError(f"the global batch size {batch_size} must be a multiple of the "
                            f"{self.num_replicas} replicas of the {self.name} strategy")

    def describe(self):
        if self.name == "one":
            return "one device"
        where = f" ({', '.join(self.devices)})" if self.devices else ""
        return f"{self.name} strategy, {self.num_replicas} replicas{where}"

    def __repr__(self):
        return f"Distribution({self.describe()})"


def make_distribution(name="auto", devices=None):
    """Create the distribution ``name`` (see the module docstring).

    Call it at the start of the program, before TensorFlow has run any op
    (``MultiWorkerMirroredStrategy`` must be created first thing).
    ``devices`` (TensorFlow mirrored / JAX) overrides the local devices used.
    """
    if name not in STRATEGIES:
        raise CinnError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(name, devices)
    if backend == "jax":
        return _jax(name, devices)
    if name in ("mirrored", "multiworker"):
        raise CinnError(f"--strategy {name} needs the tensorflow or jax backend, "
                        f"not {backend}")
    return Distribution("one")


# -- TensorFlow ---------------------------------------------------------------------
def tf_config():
    """The parsed ``TF_CONFIG`` environment variable, or ``None`` when unset."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
        workers = cfg["cluster"]["worker"]
        cfg["task"]["type"], int(cfg["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise CinnError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", '
                        '"host2:port"]}, "task": {"type": "worker", "index": 0}}') from None
    if not isinstance(workers, list) or not workers:
        raise CinnError("TF_CONFIG: cluster.worker must be a non-empty list of host:port")
    return cfg


def _tensorflow(name, devices):
    import tensorflow as tf

    cfg = tf_config()
    n_workers = 0 if cfg is None else len(cfg["cluster"]["worker"]) + len(
        cfg["cluster"].get("chief", []))
    if name == "auto":  # (physical devices: listing logical ones starts TensorFlow)
        name = "multiworker" if n_workers > 1 else "mirrored" if len(
            tf.config.list_physical_devices("GPU")) > 1 else "one"
    if name == "one":
        return Distribution("one")
    if name == "mirrored":
        if devices is None:
            gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            devices = gpus or (cpus if len(cpus) > 1 else cpus[:1])
        strategy = tf.distribute.MirroredStrategy(devices=list(devices))
        return Distribution("mirrored", strategy.num_replicas_in_sync, strategy,
                            is_chief=strategy_is_chief(strategy), devices=devices)
    # multiworker
    if cfg is None:
        raise CinnError("--strategy multiworker needs the TF_CONFIG environment variable "
                        "(the cluster's workers and this process's index; see README)")
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution("multiworker", strategy.num_replicas_in_sync, strategy,
                        is_chief=strategy_is_chief(strategy),
                        devices=[f"worker {cfg['task']['index']} of {n_workers}"])


# -- JAX ----------------------------------------------------------------------------
def _jax(name, devices):
    if name == "multiworker":
        raise CinnError("--strategy multiworker needs the tensorflow backend "
                        "(KERAS_BACKEND=tensorflow); on jax use mirrored over local devices")
    if name == "one":
        return Distribution("one")
    devices = list(devices or keras.distribution.list_devices())
    if len(devices) < 2:
        if name == "mirrored":
            print("[cinn] note: one local device, so --strategy mirrored trains on it alone",
                  file=sys.stderr)
        return Distribution("one", devices=devices)
    dp = keras.distribution.DataParallel(devices=devices)
    return Distribution("data_parallel", len(devices), dp, devices=devices)


# -- helpers for training and callbacks ---------------------------------------------
def _tf_strategy_in_scope():
    """The ``tf.distribute`` strategy in scope, or ``None`` (no TensorFlow backend,
    TensorFlow not imported, or no strategy)."""
    if "tensorflow" not in sys.modules or keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def strategy_is_chief(strategy):
    """Whether this process, under ``strategy``, is the one that writes checkpoints and
    logs: the one rule of cinn. TensorFlow decides it
    (``strategy.extended.should_checkpoint``): under a multi-worker strategy, the task
    of type ``chief``, else worker 0; every other strategy has one process."""
    return True if strategy is None else bool(strategy.extended.should_checkpoint)


def current_is_chief():
    """Whether this process should write checkpoints and logs (``strategy_is_chief``
    of the strategy in scope; ``True`` without one)."""
    return strategy_is_chief(_tf_strategy_in_scope())


def in_multi_worker():
    """Whether a TensorFlow ``MultiWorkerMirroredStrategy`` over several workers is in
    scope (it has more replicas than this process has devices)."""
    strategy = _tf_strategy_in_scope()
    if strategy is None:
        return False
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def scale_loss_for_replicas(loss):
    """``loss / num_replicas`` under a TensorFlow strategy with several replicas (each
    replica's gradients are summed), else ``loss``."""
    strategy = _tf_strategy_in_scope()
    n = 1 if strategy is None else strategy.num_replicas_in_sync
    if n == 1:
        return loss
    return keras.ops.multiply(loss, keras.ops.cast(1.0 / n, loss.dtype))


def prepare_for_fit(model):
    """Let ``model.fit`` run under a TensorFlow multi-worker strategy, whose start
    Keras cannot handle by itself (``cinn._keras_compat.skip_symbolic_build``; the
    step logs are handled by ``ConditionalINN.compute_metrics``). Call inside the
    strategy scope, after ``compile``; a no-op otherwise."""
    if in_multi_worker():
        _keras_compat.skip_symbolic_build(model)
    return model


def clip_after_all_reduce(optimizer):
    """Make gradient clipping see the gradient of the whole global batch.

    Under a TensorFlow strategy, Keras clips each replica's share of the
    gradient before summing them over replicas, so ``clipnorm`` and
    ``global_clipnorm`` would act differently than on one device. This moves
    the clipping after the all-reduce (``cinn._keras_compat.clip_after_all_reduce``;
    TensorFlow backend only: on JAX the gradient is already the global one). The
    optimizer's config is unchanged.
    """
    if keras.backend.backend() != "tensorflow" or not (
            optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue):
        return optimizer
    return _keras_compat.clip_after_all_reduce(optimizer)
