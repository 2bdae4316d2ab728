"""Compiled (jit / XLA-free graph) versions of a model's methods, per backend.

``compiled(model, "decode")`` returns a function with the signature of
``model.decode`` that runs as one compiled program: ``jax.jit`` over the
model's variables on JAX (on a CPU with the XLA options that
``cinn._xla_cpu.compiler_options`` gives for the model's convolution widths),
``tf.function`` on TensorFlow, the plain method elsewhere. Compiled functions are
cached on the model and retrace for new input shapes; Python-side checks (shape
errors) run while tracing.
"""
import keras

from cinn._xla_cpu import compiler_options


def compiled(model, method):
    cache = model.__dict__.setdefault("_cinn_compiled", {})
    if method not in cache:
        cache[method] = _compile(model, getattr(model, method))
    return cache[method]


def _compile(model, fn):
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def pure(trainable, non_trainable, *args):
            mapping = list(zip(model.trainable_variables, trainable)) + list(
                zip(model.non_trainable_variables, non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        jitted = None  # made at the first call, when the model has its weights

        def call(*args):
            nonlocal jitted
            if jitted is None:
                shapes = [tuple(w.shape) for w in model.weights]
                jitted = jax.jit(pure, compiler_options=compiler_options(
                    jax.default_backend(), shapes))
            return jitted([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables], *args)

        return call
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return fn
