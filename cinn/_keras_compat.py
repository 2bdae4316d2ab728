"""Workarounds for Keras behaviour that no public API can change.

This is the one module of ``cinn`` that touches private Keras attributes
(``grep -rn "keras.src" cinn`` finds only this file). Each workaround
below names the Keras behaviour it works around (source file and function, as
of Keras 3.15.1), the public issue that reports it, and has a probe in
``STILL_NEEDED``: ``tests/test_keras_compat.py`` asserts every probe, so it
fails once Keras stops behaving that way; then delete the workaround.

Version guard: the workarounds were written and tested against Keras
``TESTED_KERAS`` (``pyproject.toml`` pins the same range). On another version
``check_keras_version`` warns once, and a workaround whose private hook is gone
raises a ``CinnError`` that names it, instead of failing somewhere deep in
``fit``.

All three concern TensorFlow's ``tf.distribute`` strategies; on JAX, or with
no strategy, nothing here is applied.
"""
import types
import warnings

import keras

from cinn._versions import in_range, major_minor
from cinn.errors import CinnError

#: Keras versions the workarounds were tested with: from (inclusive), to (exclusive)
TESTED_KERAS = ((3, 15), (3, 16))


def keras_version(version=None):
    """``(major, minor)`` of ``version`` (default: the installed Keras)."""
    return major_minor(version or keras.__version__)


def in_tested_range(version=None):
    """Whether ``version`` (default: the installed Keras) is in ``TESTED_KERAS``."""
    return in_range(keras_version(version), TESTED_KERAS)


_warned = []


def check_keras_version():
    """Warn (once per process) when the installed Keras is outside ``TESTED_KERAS``."""
    if in_tested_range() or _warned:
        return
    _warned.append(True)
    lo, hi = TESTED_KERAS
    warnings.warn(
        f"cinn's workarounds for Keras internals (cinn/_keras_compat.py) were tested with "
        f"Keras >={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}; you run Keras {keras.__version__}. "
        "Distributed training on TensorFlow may misbehave; run tests/test_keras_compat.py.",
        RuntimeWarning, stacklevel=3)


def _hook(obj, name, workaround):
    """``getattr(obj, name)``, or a ``CinnError`` naming the workaround when Keras no
    longer has that private attribute."""
    check_keras_version()
    if not hasattr(obj, name):
        raise CinnError(
            f"cinn's Keras workaround {workaround!r} needs {type(obj).__name__}.{name}, "
            f"which Keras {keras.__version__} does not have (tested with Keras "
            f"{TESTED_KERAS[0][0]}.{TESTED_KERAS[0][1]}); see cinn/_keras_compat.py")
    return getattr(obj, name)


# -- 1. the symbolic build at the start of fit under MultiWorkerMirroredStrategy --------
#
# Keras: keras/src/backend/tensorflow/trainer.py, TensorFlowTrainer._maybe_symbolic_build.
# Under any tf.distribute strategy, fit/evaluate first take one distributed batch and
# average it over replicas with ``strategy.reduce("MEAN", batch, axis=None)`` to build
# the model symbolically. Under a MultiWorkerMirroredStrategy spanning several workers
# that reduce fails ("Attempt to convert a value (PerReplica:{...}) with an unsupported
# type"). Reported as keras-team/keras#20585 ("Does Keras 3 work with
# tf.distribute.MultiWorkerMirroredStrategy?", open) and tensorflow/tensorflow#72388.
# A ConditionalINN is built when constructed, so the only thing left for that step
# is the optimizer: build it up front and skip the reduce.

def skip_symbolic_build(model):
    """Let ``model.fit`` start under a multi-worker strategy (see above): build the
    optimizer now and replace the model's symbolic build by a check that every layer
    is built. Call inside the strategy scope, after ``compile``."""
    _hook(model, "_maybe_symbolic_build", "skip_symbolic_build")
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


def _probe_symbolic_build_reduces_the_batch():
    """Keras still averages the first distributed batch over replicas before fit."""
    from unittest import mock

    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    strategy = mock.MagicMock()
    batch = (mock.Mock(spec=tf.distribute.DistributedValues),)
    fake = types.SimpleNamespace(_distribute_strategy=strategy, distribute_strategy=strategy,
                                 _symbolic_build=mock.Mock())
    TensorFlowTrainer._maybe_symbolic_build(fake, iterator=[(0, 0, iter([batch]))])
    return mock.call("MEAN", batch, axis=None) in strategy.reduce.mock_calls


# -- 2. the per-step logs under MultiWorkerMirroredStrategy -----------------------------
#
# Keras: keras/src/backend/tensorflow/trainer.py, reduce_per_replica. The train and
# test functions average each value of the step's logs over workers with
# ``strategy.reduce("MEAN", value, axis=0)`` when the strategy is a
# MultiWorkerMirroredStrategy over several workers; the logs of ``compute_metrics``
# are scalars, and reducing a scalar along axis 0 fails. Same report as above
# (keras-team/keras#20585). Public workaround: ``ConditionalINN.compute_metrics`` gives
# each log value the shape (1,) under such a strategy; the reduce along axis 0 then
# averages over workers and returns the scalar.

def logs_for_multi_worker_reduce(logs):
    """``logs`` with every value of shape ``(1,)``, for Keras' reduce (see above)."""
    return {k: keras.ops.reshape(v, (1,)) for k, v in logs.items()}


def _probe_logs_are_reduced_along_axis_0():
    """Keras still reduces every log value along axis 0 under a multi-worker strategy,
    and a strategy cannot reduce a scalar along axis 0."""
    from unittest import mock

    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import reduce_per_replica

    strategy = mock.MagicMock(spec=tf.distribute.MultiWorkerMirroredStrategy)
    strategy.extended._in_multi_worker_mode.return_value = True
    loss = tf.constant(1.0)
    reduce_per_replica({"loss": loss}, strategy, "auto")
    axis_0 = mock.call("MEAN", loss, axis=0) in strategy.reduce.mock_calls
    try:
        tf.distribute.get_strategy().reduce("MEAN", loss, axis=0)
    except (ValueError, tf.errors.InvalidArgumentError):
        return axis_0
    return False


# -- 3. gradient clipping under a strategy ----------------------------------------------
#
# Keras: keras/src/optimizers/base_optimizer.py, BaseOptimizer._backend_apply_gradients
# clips the gradients (``_clip_gradients``) before ``_backend_update_step``, whose
# TensorFlow version (keras/src/backend/tensorflow/optimizer.py,
# TFOptimizer._backend_update_step) sums them over replicas
# (``_all_reduce_sum_gradients``). So under a strategy every replica's share of the
# gradient is clipped on its own, and ``clipnorm`` / ``global_clipnorm`` /
# ``clipvalue`` act differently than on one device. The same order in tf.keras is
# tensorflow/tensorflow#33929 (there clipping under a strategy was refused for this
# reason: "clipping before gradients get aggregated (usually wrong)"). The workaround
# moves the clipping after the all-reduce, for this optimizer instance only.

def clip_after_all_reduce(optimizer):
    """Make ``optimizer`` clip the gradient of the whole global batch under a
    TensorFlow strategy (see above). Its config is unchanged."""
    import tensorflow as tf

    clip = _hook(optimizer, "_clip_gradients", "clip_after_all_reduce")
    reduce = _hook(optimizer, "_all_reduce_sum_gradients", "clip_after_all_reduce")

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


def _probe_clipping_precedes_the_all_reduce():
    """Keras still clips before the update step, and TensorFlow's update step
    still sums the gradients over replicas."""
    from unittest import mock

    from keras.src.backend.tensorflow.optimizer import TFOptimizer

    optimizer = keras.optimizers.SGD(global_clipnorm=1.0)
    var = keras.Variable([1.0, 2.0])
    optimizer.build([var])
    calls = []
    optimizer._clip_gradients = lambda grads: calls.append("clip") or grads
    optimizer._apply_weight_decay = lambda variables: None
    optimizer._backend_update_step = lambda grads, variables, lr: calls.append("update")
    optimizer._backend_apply_gradients([keras.ops.ones((2,))], [var])
    fake = mock.MagicMock()
    fake._all_reduce_sum_gradients.side_effect = lambda gv: calls.append("all_reduce") or gv
    with mock.patch("tensorflow.__internal__.distribute.interim.maybe_merge_call"):
        TFOptimizer._backend_update_step(fake, [keras.ops.ones((2,))], [var], 0.1)
    return calls == ["clip", "update", "all_reduce"]


#: name -> probe that returns True while Keras still needs the workaround
STILL_NEEDED = {
    "skip_symbolic_build": _probe_symbolic_build_reduces_the_batch,
    "logs_for_multi_worker_reduce": _probe_logs_are_reduced_along_axis_0,
    "clip_after_all_reduce": _probe_clipping_precedes_the_all_reduce,
}


def sublayers(layer, recursive=True):
    """Every layer inside ``layer`` (not itself), depth first; only the direct ones
    when ``recursive`` is false. Keras 3 has no public walk over a plain ``Layer``'s
    sub-layers (``Model.layers`` is one level of a model only), so this calls its
    ``_flatten_layers``, the method Keras' own ``Layer.weights`` walks with."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))
