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


def _tf_is_chief(cfg):
    if cfg is None:
        return True
    task = cfg["task"]
    if "chief" in cfg["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


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
                            devices=devices)
    # multiworker
    if cfg is None:
        raise CinnError("--strategy multiworker needs the TF_CONFIG environment variable "
                        "(the cluster's workers and this process's index; see README)")
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution("multiworker", strategy.num_replicas_in_sync, strategy,
                        is_chief=_tf_is_chief(cfg),
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


# -- helpers for callbacks ----------------------------------------------------------
def current_is_chief():
    """Whether this process should write checkpoints and logs: ``False`` only on
    a non-chief worker of a TensorFlow multi-worker strategy in scope."""
    if "tensorflow" not in sys.modules or keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return True
    strategy = tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode",
                                       lambda: False)():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    spec = resolver.cluster_spec().as_dict()
    return "chief" not in spec and task_type == "worker" and int(task_id or 0) == 0


def in_multi_worker():
    """Whether a TensorFlow multi-worker strategy is in scope."""
    if "tensorflow" not in sys.modules or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return False
    extended = tf.distribute.get_strategy().extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def prepare_for_fit(model):
    """Work around a Keras 3 bug under ``MultiWorkerMirroredStrategy``.

    Before fitting, Keras reduces the first (nested) batch across workers to
    build the model symbolically, which fails with "Attempt to convert a value
    (PerReplica ...)". A ``ConditionalINN`` is built when constructed, so that
    step only has to build the optimizer: build it here and skip the reduce.
    And Keras averages each step's (scalar) logs across workers with
    ``reduce("MEAN", v, axis=0)``, which fails on scalars: average them with
    ``axis=None`` instead (``_patch_multi_worker_mean``).
    Call inside the strategy scope, after ``compile``.
    """
    if not in_multi_worker():
        return model
    import types

    _patch_multi_worker_mean()

    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not all(layer.built for layer in self._flatten_layers()):
            raise ValueError("under a multi-worker strategy the model must be built "
                             "before training")
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    return model


def _patch_multi_worker_mean():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_cinn", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
                strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._cinn = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def clip_after_all_reduce(optimizer):
    """Make gradient clipping see the gradient of the whole global batch.

    Under a TensorFlow strategy, Keras clips each replica's share of the
    gradient before summing them over replicas, so ``clipnorm`` and
    ``global_clipnorm`` would act differently than on one device. This moves
    the clipping after the all-reduce (TensorFlow backend; on JAX the gradient
    is already the global one). The optimizer's config is unchanged.
    """
    if keras.backend.backend() != "tensorflow" or not (
            optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue):
        return optimizer
    import tensorflow as tf

    clip, reduce = optimizer._clip_gradients, optimizer._all_reduce_sum_gradients

    def several_replicas():
        ctx = tf.distribute.get_replica_context()
        return ctx is not None and ctx.num_replicas_in_sync > 1

    def _clip_gradients(grads):
        return grads if several_replicas() else clip(grads)

    def _all_reduce_sum_gradients(grads_and_vars):
        reduced = reduce(grads_and_vars)
        if not several_replicas():
            return reduced
        grads = clip([g for g, _ in reduced])
        return [(g, v) for g, (_, v) in zip(grads, reduced)]

    optimizer._clip_gradients = _clip_gradients
    optimizer._all_reduce_sum_gradients = _all_reduce_sum_gradients
    return optimizer
