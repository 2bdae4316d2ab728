"""TensorFlow Probability view of a ``ConditionalINN`` (TensorFlow backend only).

``as_distribution(model, condition)`` is ``p(x | condition)`` as a
``tfp.distributions.TransformedDistribution``: a standard normal over the flat
latent ``z`` (event shape ``[D]``, batch shape ``[B]``) pushed through
``FlowBijector``, whose forward map is the flow's ``decode_and_log_det`` (forward
log-det-Jacobian = its ``log_det``) and whose inverse is ``encode`` (inverse
log-det-Jacobian = encode's ``log_det``). Each direction runs the flow once: a
sample's density (``dist.experimental_sample_and_log_prob``) is not encoded again.
So::

    dist = as_distribution(model, c)       # c: [B, h, w, c_ch]
    dist.batch_shape, dist.event_shape     # [B], [H, W, C]
    dist.log_prob(x)                       # == model.log_prob(x, c), shape [B]
    dist.sample(n, seed=...)               # [n, B, H, W, C]

``dist.sample(n, seed)`` draws ``z = dist.distribution.sample(n, seed)`` ([n, B, D])
and decodes ``z[i, b]`` with ``c[b]``: the same images as
``model.sample(c, n, z=...)`` with those latents.

Axis order: TFP puts the sample axis first, ``dist.sample(n)`` is ``[n, B, ...]``;
``model.sample(c, n)`` puts the condition axis first, ``[B, n, ...]`` (``n``
samples of each condition, condition after condition). So
``dist.sample(n, seed)`` equals ``model.sample(c, n, z=tf.reshape(tf.transpose(z,
[1, 0, 2]), [B * n, D]))`` transposed by ``[1, 0, ...]``, up to float rounding.
"""
import tensorflow as tf
import tensorflow_probability as tfp

from cinn.export import latent_size, require_tensorflow

tfb = tfp.bijectors
tfd = tfp.distributions


def _flatten_leading(t, event_rank):
    """[*lead, *event] -> ([prod(lead), *event], lead)."""
    shape = tf.shape(t)
    lead = shape[:tf.rank(t) - event_rank]
    flat = tf.reshape(t, tf.concat([[-1], shape[tf.rank(t) - event_rank:]], 0))
    return flat, lead


class FlowBijector(tfb.Bijector):
    """``z [..., B, D] <-> x [..., B, *x_shape]`` through a ``ConditionalINN`` for a
    fixed batch of conditions ``c [B, ...]`` (or no condition)."""

    def __init__(self, model, condition=None, validate_args=False, name="cinn_flow"):
        require_tensorflow()
        self.model = model
        dtype = tf.as_dtype(model.compute_dtype)
        self.condition = None if condition is None else tf.convert_to_tensor(condition, dtype)
        if self.condition is not None:
            # the model's own checks, with its clear messages
            model._check_condition(self.condition)
        xs = model.x_shape if self.condition is None else model.x_shape_for(self.condition)
        self._x_event = tuple(xs)
        self._latent = latent_size(model, self.condition)
        self._memo = None  # (x, z, log_det) of the last inverse: one encode per log_prob
        self._memo_fwd = None  # (z, x, log_det) of the last forward: one decode
        super().__init__(forward_min_event_ndims=1, inverse_min_event_ndims=len(xs),
                         is_constant_jacobian=False, validate_args=validate_args,
                         dtype=dtype, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    # -- shapes -------------------------------------------------------------------
    def _static(self, dims):
        return tf.TensorShape([d if isinstance(d, int) else tf.get_static_value(d)
                               for d in dims])

    def _batch_shape(self, x_event_ndims):
        if self.condition is None:
            return tf.TensorShape([])
        return self.condition.shape[:1]

    def _batch_shape_tensor(self, x_event_ndims):
        if self.condition is None:
            return tf.constant([], tf.int32)
        return tf.shape(self.condition)[:1]

    def _forward_event_shape(self, input_shape):
        return self._static(self._x_event)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.stack([tf.cast(d, tf.int32) for d in self._x_event])

    def _inverse_event_shape(self, output_shape):
        return self._static([self._latent])

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.reshape(tf.cast(self._latent, tf.int32), [1])

    # -- the maps ---------------------------------------------------------------
    def _repeat_condition(self, lead):
        """Conditions for a flattened [*lead] batch whose last lead axis is B."""
        if self.condition is None:
            return None
        reps = tf.reduce_prod(lead) // tf.shape(self.condition)[0]
        tiles = tf.concat([[reps], tf.ones([tf.rank(self.condition) - 1], tf.int32)], 0)
        return tf.tile(self.condition, tiles)

    def _with_batch(self, t, event_rank):
        """Broadcast ``t`` so that its last batch axis is the condition batch."""
        if self.condition is None:
            return t
        shape = tf.shape(t)
        lead = shape[:tf.rank(t) - event_rank]
        lead = tf.broadcast_dynamic_shape(lead, tf.shape(self.condition)[:1])
        return tf.broadcast_to(t, tf.concat([lead, shape[tf.rank(t) - event_rank:]], 0))

    def _decode(self, z):
        memo = self._memo_fwd
        if memo is not None and memo[0] is z:
            return memo[1], memo[2]
        zb = self._with_batch(tf.cast(z, self.dtype), 1)
        flat, lead = _flatten_leading(zb, 1)
        x, log_det = self.model.decode_and_log_det(flat, self._repeat_condition(lead))
        x = tf.reshape(x, tf.concat([lead, tf.shape(x)[1:]], 0))
        log_det = tf.reshape(log_det, lead)
        self._memo_fwd = (z, x, log_det)
        return x, log_det

    def _forward(self, z):
        return self._decode(z)[0]

    def _forward_log_det_jacobian(self, z):
        return self._decode(z)[1]

    def _encode(self, x):
        memo = self._memo
        if memo is not None and memo[0] is x:
            return memo[1], memo[2]
        xb = self._with_batch(tf.cast(x, self.dtype), len(self._x_event))
        flat, lead = _flatten_leading(xb, len(self._x_event))
        z, log_det = self.model.encode(flat, self._repeat_condition(lead))
        z = tf.reshape(z, tf.concat([lead, tf.shape(z)[1:]], 0))
        log_det = tf.reshape(log_det, lead)
        self._memo = (x, z, log_det)
        return z, log_det

    def _inverse(self, x):
        return self._encode(x)[0]

    def _inverse_log_det_jacobian(self, x):
        return self._encode(x)[1]


def as_distribution(model, condition=None, validate_args=False, name="cinn"):
    """``p(x | condition)`` of ``model`` as a ``tfp.distributions.Distribution``.

    Batch shape ``[B]`` (the condition's batch; ``[]`` when unconditional), event
    shape the shape of one ``x`` for that condition (e.g. ``[H, W, C]``).
    ``sample(n)`` is ``[n, B, *event]``, sample axis first as everywhere in TFP,
    where ``model.sample(c, n)`` is ``[B, n, *x_shape]``, condition axis first: swap
    the first two axes to go from one to the other (module docstring).
    """
    require_tensorflow()
    bijector = FlowBijector(model, condition, validate_args=validate_args)
    dtype = bijector.dtype
    size = bijector._latent
    if bijector.condition is None:
        batch = tf.constant([], tf.int32)
    else:
        batch = tf.shape(bijector.condition)[:1]
    loc = tf.zeros(tf.concat([batch, tf.reshape(tf.cast(size, tf.int32), [1])], 0), dtype)
    if bijector.condition is not None:
        loc = tf.ensure_shape(loc, [bijector.condition.shape[0],
                                    size if isinstance(size, int) else None])
    base = tfd.Independent(tfd.Normal(loc, tf.ones([], dtype)), reinterpreted_batch_ndims=1,
                           validate_args=validate_args)
    return tfd.TransformedDistribution(base, bijector, validate_args=validate_args,
                                       name=name)
