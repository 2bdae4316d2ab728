"""Export a ``ConditionalINN`` as a TensorFlow SavedModel (TensorFlow backend only).

The SavedModel loads with TensorFlow alone (``tf.saved_model.load``: no ``cinn``,
no ``keras`` in the serving process) and holds these raw signatures, with batch
and spatial sizes dynamic (``B`` batch, ``N`` samples per condition, ``D`` latent
size = the number of values of one ``x``)::

    sample(condition [B, h, w, c], z [B, N, D], temperature [])  -> x [B, N, H, W, C]
    sample_seeded(condition, num_samples [] int32, temperature [], seed [] int64)
                                              -> x [B, N, H, W, C], z [B, N, D]
    encode(x [B, H, W, C], condition)         -> z [B, D], log_det [B]
    log_prob(x, condition)                    -> log_prob [B]   (nats)
    info()                                    -> constants describing the model

Unconditional flows have the same signatures without ``condition`` (``sample``
takes ``z [N, D]`` and returns ``x [N, ...]``). ``sample`` draws exactly what
``model.sample(c, n=N, z=reshape(z, [B * N, D]), temperature=t)`` draws;
``sample_seeded`` draws ``z`` with ``tf.random.stateless_normal`` in blocks
(seeds ``[seed, j]``, as ``model.sample`` does), so the same seed gives the same
samples on every call. ``num_samples``, ``temperature`` and ``seed`` are checked
against the ranges of ``cinn.sampling`` (an ``InvalidArgumentError`` otherwise).

Apps add their own image-level signatures (``extra``, see
``cinn/apps/<app>/export.py``); ``cinn export APP`` writes both.
"""
import math

from cinn.errors import CinnError

def require_tensorflow():
    """``tensorflow`` when Keras runs on it, else a one-line ``CinnError``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise CinnError(
            f"SavedModel export and TFP need the TensorFlow backend, Keras runs on "
            f"{keras.backend.backend()}; set KERAS_BACKEND=tensorflow (weights trained "
            "under JAX load fine)")
    import tensorflow as tf

    return tf


def image_upscale(model):
    """Size of the output image over that of the input image: ``model.image_upscale``
    where an app's flow models something other than the output image (super-resolution:
    detail coefficients on the low-resolution grid, so the flow's own ``upscale`` is 1),
    else ``model.upscale``."""
    return int(getattr(model, "image_upscale", model.upscale))


def x_signature(model, name="x"):
    """``tf.TensorSpec`` of a batch of ``x`` (batch and free sizes dynamic)."""
    import tensorflow as tf

    return tf.TensorSpec((None,) + tuple(model.x_shape), tf.float32, name=name)


def condition_signature(model, name="condition"):
    """``tf.TensorSpec`` of a batch of conditions (``None`` when unconditional)."""
    import tensorflow as tf

    if model.cond_shape is None:
        return None
    return tf.TensorSpec((None,) + tuple(model.cond_shape), tf.float32, name=name)


def latent_size(model, c=None):
    """Number of latent values ``D`` of one ``x`` for condition batch ``c``
    (a Python int when static, else a scalar tensor)."""
    xs = model.x_shape if c is None else model.x_shape_for(c)
    return math.prod(xs)


def decode_grouped(model, z, c=None, temperature=1.0):
    """``z`` [B, N, D] (conditional) or [N, D] -> ``x`` [B, N, *x] or [N, *x],
    decoding ``temperature * z``; sample ``n`` of row ``b`` goes with ``c[b]``.
    Same ordering as ``model.sample``."""
    import tensorflow as tf

    dtype = model.compute_dtype
    z = tf.cast(z, dtype) * tf.cast(temperature, dtype)
    if c is None:
        return tf.cast(model.decode(z), tf.float32)
    c = tf.cast(c, dtype)
    xs = model.x_shape_for(c)
    size = latent_size(model, c)
    tf.debugging.assert_equal(tf.shape(z)[2], tf.cast(size, tf.int32), message=(
        "z must have shape [batch, num_samples, D] with D = the number of values of "
        "one x for this condition"))
    bsz, n = tf.shape(z)[0], tf.shape(z)[1]
    x = model.decode(tf.reshape(z, [bsz * n, size]), tf.repeat(c, n, axis=0))
    return tf.cast(tf.reshape(x, [bsz, n, *xs]), tf.float32)


def stateless_latents(count, size, seed):
    """``count`` standard normal latents [count, size] from a scalar integer seed, as
    ``model.sample`` draws them (``cinn.model._latents``): blocks of
    ``latent_block(size)`` samples, block ``j`` drawn with the seed ``[seed, j]``.
    The seed must lie in 0..``cinn.sampling.MAX_SEED`` (checked)."""
    import tensorflow as tf

    from cinn.model import LATENT_BLOCK_VALUES
    from cinn.sampling import MAX_SEED

    seed = tf.cast(seed, tf.int64)
    size = tf.cast(size, tf.int32)
    ok = (seed >= 0) & (seed <= MAX_SEED)
    check = tf.debugging.Assert(ok, [f"seed must be an integer from 0 to {MAX_SEED}, got",
                                     seed])
    with tf.control_dependencies([check]):
        block = tf.maximum(1, LATENT_BLOCK_VALUES // size)
    blocks = (count + block - 1) // block
    z = tf.map_fn(lambda j: tf.random.stateless_normal([block, size], seed=tf.stack([seed, j])),
                  tf.range(tf.cast(blocks, tf.int64)), fn_output_signature=tf.float32)
    return tf.reshape(z, [-1, size])[:count]


def sample_with_seed(model, sample, condition, num_samples, temperature, seed):
    """``(x [B, N, *x], z [B, N, D])`` with ``z`` from ``stateless_latents(seed)``,
    decoded by ``sample`` (the raw ``sample`` tf.function of ``raw_functions``, so
    the flow is traced once however many signatures use it).

    On the TensorFlow backend this is what ``model.sample(c, n, temperature,
    seed=seed)`` draws for a Python int ``seed`` (Keras' stateless normal with
    seeds ``[seed, j]``), so the app signatures reproduce the command line."""
    import tensorflow as tf

    size = tf.cast(latent_size(model, condition), tf.int32)
    bsz = tf.shape(condition)[0]
    z = tf.reshape(stateless_latents(bsz * num_samples, size, seed), [bsz, num_samples, size])
    return sample(condition, z, temperature)["x"], z


def pad_to_multiple(images, multiple):
    """Pad a batch ``[B, H, W, C]`` at the bottom/right to multiples of ``multiple``:
    by reflection, or by repeating the edge when a pad is not smaller than the
    image (the rules of ``cinn.apps.common.images.pad_to_multiple``, in TensorFlow).
    Not for bool tensors (cast first)."""
    import tensorflow as tf

    h, w = tf.shape(images)[1], tf.shape(images)[2]
    ph, pw = (-h) % multiple, (-w) % multiple

    def reflect():
        return tf.pad(images, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="REFLECT")

    def edge():
        x = tf.concat([images, tf.repeat(images[:, h - 1:], ph, axis=1)], axis=1)
        return tf.concat([x, tf.repeat(x[:, :, w - 1:], pw, axis=2)], axis=2)

    return tf.cond((ph >= h) | (pw >= w), edge, reflect)


def check_sampling_args(num_samples, temperature):
    """Graph-time checks of the sampling arguments of a serving signature: the ranges
    of ``cinn.sampling.check_sampling`` (the seed is checked where it is used)."""
    import tensorflow as tf

    from cinn.sampling import MAX_SAMPLES, MAX_TEMPERATURE

    return [tf.debugging.Assert((num_samples >= 1) & (num_samples <= MAX_SAMPLES), [
                f"num_samples must be from 1 to {MAX_SAMPLES}, got", num_samples]),
            tf.debugging.Assert(tf.math.is_finite(temperature) & (temperature >= 0)
                                & (temperature <= MAX_TEMPERATURE), [
                f"temperature must be a finite number from 0 to {MAX_TEMPERATURE:g}, got",
                temperature])]


def to_uint8(values, scale=255.0, offset=0.0):
    """``round((values + offset) * scale)`` clipped to [0, 255] as uint8 (half to even,
    like ``numpy.round``/``numpy.rint``)."""
    import tensorflow as tf

    v = tf.round((tf.cast(values, tf.float32) + offset) * scale)
    return tf.cast(tf.clip_by_value(v, 0.0, 255.0), tf.uint8)


def raw_functions(model):
    """The raw signatures of ``model`` as ``{name: tf.function}`` (input signatures
    set). The flow is traced twice: in ``sample`` (decode) and ``encode``; the
    other signatures call those two."""
    tf = require_tensorflow()
    xspec = x_signature(model)
    cspec = condition_signature(model)
    temp = tf.TensorSpec([], tf.float32, name="temperature")
    count = tf.TensorSpec([], tf.int32, name="num_samples")
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    dtype = model.compute_dtype

    def fn(signature):
        return lambda f: tf.function(f, input_signature=signature, autograph=False)

    def encoded(x, c=None):
        z, log_det = model.encode(tf.cast(x, dtype), None if c is None else tf.cast(c, dtype))
        return {"z": tf.cast(z, tf.float32), "log_det": tf.cast(log_det, tf.float32)}

    def density(enc):
        return {"log_prob": -model.nll(enc["z"], enc["log_det"])}

    if cspec is not None:
        @fn([cspec, tf.TensorSpec([None, None, None], tf.float32, name="z"), temp])
        def sample(condition, z, temperature):
            return {"x": decode_grouped(model, z, condition, temperature)}

        @fn([cspec, count, temp, seed_spec])
        def sample_seeded(condition, num_samples, temperature, seed):
            with tf.control_dependencies(check_sampling_args(num_samples, temperature)):
                num_samples = tf.identity(num_samples)
            x, z = sample_with_seed(model, sample, condition, num_samples, temperature, seed)
            return {"x": x, "z": z}

        @fn([xspec, cspec])
        def encode(x, condition):
            return encoded(x, condition)

        @fn([xspec, cspec])
        def log_prob(x, condition):
            return density(encode(x, condition))
    else:
        @fn([tf.TensorSpec([None, None], tf.float32, name="z"), temp])
        def sample(z, temperature):
            return {"x": decode_grouped(model, z, None, temperature)}

        @fn([count, temp, seed_spec])
        def sample_seeded(num_samples, temperature, seed):
            with tf.control_dependencies(check_sampling_args(num_samples, temperature)):
                num_samples = tf.identity(num_samples)
            z = stateless_latents(num_samples, latent_size(model), seed)
            return {"x": sample(z, temperature)["x"], "z": z}

        @fn([xspec])
        def encode(x):
            return encoded(x)

        @fn([xspec])
        def log_prob(x):
            return density(encode(x))

    consts = {
        "app": tf.constant(str(getattr(model, "app", None) or "")),
        "x_channels": tf.constant(int(model.x_shape[-1] or -1), tf.int32),
        "condition_channels": tf.constant(
            -1 if model.cond_shape is None else int(model.cond_shape[-1] or -1), tf.int32),
        "upscale": tf.constant(image_upscale(model), tf.int32),
        "multiple": tf.constant(2 ** model.num_down if model.image else 1, tf.int32),
    }

    @fn([])
    def info():
        """Constants: app name, channels of x and condition, upscale factor, and
        the multiple that the height and width of x must be."""
        return {k: tf.identity(v) for k, v in consts.items()}

    return {"sample": sample, "sample_seeded": sample_seeded, "encode": encode,
            "log_prob": log_prob, "info": info}


def export_model(model, out_dir, extra=None):
    """Write ``model`` as a SavedModel in ``out_dir``: the raw signatures plus
    ``extra``, e.g. an app's image signatures: ``{name: tf.function with an
    input_signature}``, or a callable ``extra(raw) -> {name: tf.function}`` given
    the raw functions (to call ``raw["sample"]`` rather than trace the flow
    again). The first extra signature (else ``sample``) is also
    ``serving_default``. Returns the signature names, ``serving_default``'s first."""
    tf = require_tensorflow()
    raw = raw_functions(model)
    extra = dict((extra(raw) if callable(extra) else extra) or {})
    clash = set(extra) & set(raw)
    if clash:
        raise ValueError(f"signature name(s) {sorted(clash)} clash with the raw signatures")
    fns = {**extra, **raw}
    module = tf.Module(name="cinn_export")
    # Track the model's variables only (not the Keras objects): the SavedModel
    # then needs no Python class to load. The functions are reached through
    # the signatures (``loaded.signatures[name](**inputs)``).
    module.model_variables = list(model.variables)
    signatures = {name: f.get_concrete_function() for name, f in fns.items()}
    signatures["serving_default"] = signatures[next(iter(fns))]
    tf.saved_model.save(module, str(out_dir), signatures=signatures)
    return list(fns)
