"""``ConditionalINN``: a multi-scale conditional normalizing flow as a Keras model."""
import functools
import math

import keras
import numpy as np
from keras import ops

from cinn import blocks as B
from cinn._keras_compat import logs_for_multi_worker_reduce
from cinn.blocks.base import fmt_shape
from cinn.compile import compiled
from cinn.distribute import in_multi_worker, scale_loss_for_replicas
from cinn.precision import warn_if_tf32
from cinn.sampling import check_sampling
from cinn.strips import decode_in_strips
from cinn.subnets import check_subnet
from cinn.reversible import check_backprop, run_segment

LOG_2PI = math.log(2.0 * math.pi)
#: ``sample_chunks``: values of x decoded per pass when no ``batch_size`` is given
SAMPLE_PASS_VALUES = 2 ** 21
#: latents are drawn in blocks of about this many values (see ``latent_block``)
LATENT_BLOCK_VALUES = 2 ** 20


def latent_block(dims):
    """Samples per block of latents (each block one stateless draw): a function of
    the size ``dims`` of one sample only, so chunking never changes a sample."""
    return max(1, LATENT_BLOCK_VALUES // int(dims))


def _one_by_one(decode, parts, feats):
    """``decode`` applied to one sample at a time, the results concatenated."""
    m = int(ops.shape(parts[0])[0])
    if m == 1:
        return decode(parts, feats)
    return ops.concatenate([decode([p[i:i + 1] for p in parts],
                                   [None if f is None else f[i:i + 1] for f in feats])
                            for i in range(m)], axis=0)


def _flatten(h):
    """``h`` reshaped to (batch, values), the values' count static where known (the
    global section's dense steps need it in a traced graph)."""
    rest = tuple(h.shape[1:])
    size = math.prod(rest) if all(d is not None for d in rest) else -1
    return ops.reshape(h, (ops.shape(h)[0], size))


def draw_latents(n, dims, seed=None):
    """The first ``n`` latents (n, dims) float32 that ``sample`` draws for ``seed``
    (for code that decodes them itself, e.g. a compiled decode)."""
    return _latents(dims, seed).take(int(n))


class _latents:
    """Standard normal latents of ``dims`` values, handed out ``take(m)`` at a time;
    block ``j`` of ``latent_block(dims)`` samples is drawn with the seed ``[seed, j]``
    (Keras' ``SeedGenerator(seed)`` yields ``[seed, 0], [seed, 1], ...``)."""

    def __init__(self, dims, seed):
        self.dims, self.block = int(dims), latent_block(dims)
        self.gen = None if seed is None else keras.random.SeedGenerator(int(seed))
        self.buffer = np.zeros((0, self.dims), np.float32)

    def take(self, m):
        while len(self.buffer) < m:
            z = keras.random.normal((self.block, self.dims), seed=self.gen)
            self.buffer = np.concatenate([self.buffer, ops.convert_to_numpy(z)], axis=0)
        out, self.buffer = self.buffer[:m], self.buffer[m:]
        return out

#: defaults of one level of the flow (see ``ConditionalINN``)
LEVEL_DEFAULTS = {
    "downsample": None,    # None | "haar" | "squeeze"
    "transition": False,   # ActNorm + 1x1 conv right after the downsampling (SRFlow)
    "blocks": 4,           # flow steps at this level
    "actnorm": True,       # ActNorm at the start of each step
    "permute": "conv1x1",  # "conv1x1" | "random" | None, before each coupling
    "injector": False,     # conditional affine injector before each coupling (SRFlow)
    "subnet": None,        # spec of the s/t trunks, e.g. {"type": "conv", "hidden": 64}
    "split": None,         # None | "plain" | "prior": factor half the channels out after
    "coupling": "affine",  # see COUPLINGS: the coupling of each step
}

#: ``coupling`` of a level: "affine" (``AffineCoupling``, channel split), RealNVP's
#: masked affine couplings of alternating parity ("checkerboard", "channel"), the
#: rational-quadratic spline coupling ("spline", channel mask, alternating parity),
#: the masked autoregressive flow ("maf", vectors; ``subnet``'s hidden/depth size
#: its MADE, the order reversed every other step)
COUPLINGS = ("affine", "checkerboard", "channel", "spline", "maf")


def _coupling(kind, subnet, clamp, k, name):
    """The coupling block of step ``k`` of a level (see ``COUPLINGS``)."""
    if kind == "affine":
        return B.AffineCoupling(subnet, clamp, name=name)
    if kind in ("checkerboard", "channel"):
        return B.MaskedAffineCoupling(subnet, clamp, mask=kind, parity=k % 2, name=name)
    if kind == "spline":
        return B.RationalQuadraticCoupling(subnet, parity=k % 2, name=name)
    if kind == "maf":
        size = {} if not isinstance(subnet, dict) else {
            key: subnet[key] for key in ("hidden", "depth") if key in subnet}
        return B.MaskedAutoregressiveFlow(clamp=clamp, reverse=bool(k % 2), name=name, **size)
    raise ValueError(f"coupling must be one of {COUPLINGS}, got {kind!r}")


#: defaults of the optional global section (see ``ConditionalINN``): after the last
#: level, its remaining latents are flattened into one vector and go through
#: fully connected flow steps (Ardizzone et al. 2019, colorization cINN ``_add_fc_section``)
GLOBAL_DEFAULTS = {
    "blocks": 4,           # dense flow steps on the flattened coarsest level
    "actnorm": True,       # ActNorm at the start of each step
    "permute": "random",   # "random" | None, before each coupling (a fixed permutation)
    "subnet": None,        # spec of the s/t trunks, e.g. {"type": "dense", "hidden": 512}
}


def _global_section(spec):
    if spec is None:
        return None
    spec = dict(spec)
    unknown = set(spec) - set(GLOBAL_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown global section option(s) {sorted(unknown)}; "
                         f"known: {sorted(GLOBAL_DEFAULTS)}")
    spec = {**GLOBAL_DEFAULTS, **spec}
    if spec["subnet"] is None:
        spec["subnet"] = {"type": "dense"}
    spec["subnet"] = check_subnet(spec["subnet"])
    if spec["permute"] not in ("random", None):
        raise ValueError("global section: permute must be 'random' or None")
    return spec


def _level(spec):
    unknown = set(spec) - set(LEVEL_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown level option(s) {sorted(unknown)}; "
                         f"known: {sorted(LEVEL_DEFAULTS)}")
    spec = {**LEVEL_DEFAULTS, **spec}
    spec["subnet"] = check_subnet(spec["subnet"])
    return spec


@keras.saving.register_keras_serializable(package="cinn")
class ConditionalINN(keras.Model):
    """A conditional invertible network ``z = f(x; c)``, ``x = g(z; c)``, ``z ~ N(0, I)``.

    Args:
        x_shape: shape of one sample without the batch axis, e.g. ``(None, None, 2)``
            for images of any size with 2 channels, or ``(2,)`` for vectors.
        cond_shape: shape of one condition, e.g. ``(None, None, 1)``; ``None`` for
            an unconditional flow.
        levels: list of level specs (dicts; keys and defaults in ``LEVEL_DEFAULTS``).
        cond_net: optional Keras layer mapping the condition to a list with one
            feature tensor per level, at that level's resolution (``None`` entries
            allowed). Without it the raw condition goes to every level.
        upscale: spatial size of x over that of the condition (4 for 4x SR).
        clamp: soft clamp of all log-scales.
        bin_width: quantisation step of the data (e.g. ``1/255``). When set,
            training adds uniform dequantisation noise and ``bits_per_dim``
            reports discrete bits per dimension.
        seed: seed of the random parts of the initialisation (permutations).
        backprop: ``"standard"`` or ``"inverse"``: backpropagation by inversion,
            the flow keeps no activations for the backward pass and recomputes
            them with the inverse (memory independent of depth; see
            ``cinn.reversible``).
        mean_net: optional Keras layer mapping the per-level condition features to
            a tensor shaped like x, a predicted mean: the flow then models the
            residual ``x - mean_net(features)`` (a shift, log-det 0), and samples
            are that mean plus decoded latents. Needs a condition.
        global_section: optional dict (keys and defaults in ``GLOBAL_DEFAULTS``):
            after the last level its latents are flattened to one vector that goes
            through ``blocks`` fully connected flow steps (dense subnets), so those
            latents are global (each one can change the whole sample). Image flows
            with it need a fixed ``x_shape``. The condition of these steps is one
            more entry of ``cond_net``'s list (a vector per sample, or ``None``).
    """

    def __init__(self, x_shape, cond_shape=None, levels=({},), cond_net=None, upscale=1,
                 clamp=2.0, bin_width=None, seed=None, backprop="standard", mean_net=None,
                 global_section=None, **kwargs):
        super().__init__(**kwargs)
        self.x_shape = tuple(x_shape)
        self.cond_shape = None if cond_shape is None else tuple(cond_shape)
        self.levels = [_level(dict(s)) for s in levels]
        self.upscale = int(upscale)
        self.clamp = float(clamp)
        self.bin_width = None if bin_width is None else float(bin_width)
        self.seed = seed
        self.backprop = check_backprop(backprop)
        self.image = len(self.x_shape) == 3
        self.cond_net = cond_net
        if mean_net is not None and self.cond_shape is None:
            raise ValueError("mean_net needs a condition (cond_shape)")
        self.mean_net = mean_net
        if not self.image and any(lv["downsample"] for lv in self.levels):
            raise ValueError("downsampling levels need image data, x_shape (H, W, C)")
        self.num_down = sum(1 for lv in self.levels if lv["downsample"])
        self.global_section = _global_section(global_section)
        if self.global_section is not None and any(d is None for d in self.x_shape):
            raise ValueError("a global section needs a fixed x_shape (its steps are fully "
                             f"connected), got {fmt_shape(self.x_shape)}")
        self.flow_layers, self.split_layers = self._make_layers()
        self.global_layers = self._make_global_layers()
        self._noise_seed = keras.random.SeedGenerator(0 if seed is None else seed)
        self.build()

    # -- construction -----------------------------------------------------------
    def _make_layers(self):
        rng = np.random.default_rng(self.seed)
        seeds = iter(rng.integers(0, 2**31 - 1, size=10_000).tolist())
        flows, splits = [], []
        for i, lv in enumerate(self.levels):
            layers = []
            name = f"level{i}"
            if lv["downsample"] == "haar":
                layers.append(B.HaarDownsample(name=f"{name}_haar"))
            elif lv["downsample"] == "squeeze":
                layers.append(B.Squeeze(name=f"{name}_squeeze"))
            elif lv["downsample"] is not None:
                raise ValueError(f"level {i}: downsample must be None, 'haar' or 'squeeze', "
                                 f"got {lv['downsample']!r}")
            if lv["transition"]:
                layers += [B.ActNorm(name=f"{name}_trans_actnorm"),
                           B.InvertibleConv1x1(seed=next(seeds), name=f"{name}_trans_conv1x1")]
            for k in range(int(lv["blocks"])):
                step = f"{name}_step{k}"
                if lv["actnorm"]:
                    layers.append(B.ActNorm(name=f"{step}_actnorm"))
                if lv["permute"] == "conv1x1":
                    layers.append(B.InvertibleConv1x1(seed=next(seeds), name=f"{step}_conv1x1"))
                elif lv["permute"] == "random":
                    layers.append(B.RandomPermutation(seed=next(seeds), name=f"{step}_perm"))
                elif lv["permute"] is not None:
                    raise ValueError(f"level {i}: permute must be 'conv1x1', 'random' or None")
                if lv["injector"]:
                    layers.append(B.AffineInjector(lv["subnet"], self.clamp,
                                                   name=f"{step}_injector"))
                layers.append(_coupling(lv["coupling"], lv["subnet"], self.clamp, k,
                                        name=f"{step}_coupling"))
            flows.append(layers)
            if lv["split"] not in (None, "plain", "prior"):
                raise ValueError(f"level {i}: split must be None, 'plain' or 'prior'")
            splits.append(None if lv["split"] is None else
                          B.Split(prior=lv["split"] == "prior", subnet=lv["subnet"],
                                  clamp=self.clamp, name=f"{name}_split"))
        return flows, splits

    def _make_global_layers(self):
        gs = self.global_section
        if gs is None:
            return []
        rng = np.random.default_rng(None if self.seed is None else [int(self.seed), 1])
        layers = []
        for k in range(int(gs["blocks"])):
            step = f"global_step{k}"
            if gs["actnorm"]:
                layers.append(B.ActNorm(name=f"{step}_actnorm"))
            if gs["permute"] == "random":
                layers.append(B.RandomPermutation(seed=int(rng.integers(2**31 - 1)),
                                                  name=f"{step}_perm"))
            layers.append(B.AffineCoupling(gs["subnet"], self.clamp, name=f"{step}_coupling"))
        return layers

    def _dummy_inputs(self):
        """Smallest valid batch of one, to create every weight at construction."""
        side = max(2 ** self.num_down * 2, 2 * self.upscale)
        side = -(-side // (2 ** self.num_down * self.upscale)) * 2 ** self.num_down * self.upscale
        xs = tuple(side if d is None else d for d in self.x_shape)
        x = ops.zeros((1,) + xs)
        c = None
        if self.cond_shape is not None:
            cs = list(self.cond_shape)
            if self.image and len(cs) == 3:
                for a in (0, 1):
                    if cs[a] is None:
                        cs[a] = xs[a] // self.upscale
            c = ops.zeros((1,) + tuple(cs))
        return x, c

    def build(self, input_shape=None):
        if self.built:
            return
        warn_if_tf32()
        x, c = self._dummy_inputs()
        self.encode(x, c)
        self.built = True

    # -- checks -----------------------------------------------------------------
    def _check(self, x, c):
        def same(shape, spec):
            return len(shape) == len(spec) and all(
                s is None or d is None or s == d for d, s in zip(shape, spec))

        xs = tuple(x.shape[1:])
        if not same(xs, self.x_shape):
            raise ValueError(f"x must have shape {fmt_shape((None,) + self.x_shape)}, "
                             f"got {tuple(x.shape)}")
        if self.image:
            mult = 2 ** self.num_down
            for d in xs[:2]:
                if d is not None and d % mult:
                    raise ValueError(
                        f"height and width of x must be multiples of {mult} "
                        f"(the flow downsamples {self.num_down} times), got {tuple(x.shape)}")
        if self.cond_shape is None:
            if c is not None:
                raise ValueError("this model is unconditional, but a condition was given")
            return
        if c is None:
            raise ValueError(f"a condition of shape {fmt_shape((None,) + self.cond_shape)} "
                             "is needed")
        expected = list(self.cond_shape)
        if self.image and len(expected) == 3:
            for a in (0, 1):
                if expected[a] is None and xs[a] is not None:
                    expected[a] = xs[a] // self.upscale
        if not same(tuple(c.shape[1:]), tuple(expected)):
            raise ValueError(f"condition must have shape {fmt_shape((None,) + tuple(expected))}"
                             f" for x of shape {tuple(x.shape)}, got {tuple(c.shape)}")
        if c.shape[0] is not None and x.shape[0] is not None and c.shape[0] != x.shape[0]:
            raise ValueError(f"x and condition need the same batch size, got "
                             f"{x.shape[0]} and {c.shape[0]}")

    def _as_tensors(self, c):
        """The condition as tensor(s) of the compute dtype (a nested structure of
        arrays is allowed, for conditioning networks that take several inputs)."""
        if c is None:
            return None
        return keras.tree.map_structure(
            lambda t: None if t is None else ops.convert_to_tensor(t, dtype=self.compute_dtype), c)

    def condition_features(self, c):
        """One condition tensor per level (``cond_net`` output or the raw condition)."""
        if c is None:
            return [None] * len(self.levels)
        count = len(self.levels) + (self.global_section is not None)
        if self.cond_net is None:
            return [c] * count
        feats = self.cond_net(c)
        if not isinstance(feats, (list, tuple)) or len(feats) != count:
            extra = " and one for the global section" if self.global_section else ""
            raise ValueError(f"cond_net must return a list of {count} tensors "
                             f"(one per level{extra})")
        return list(feats)

    # -- the flow ---------------------------------------------------------------
    def encode(self, x, c=None, training=False):
        """``x -> (z, log|det dz/dx|)`` with ``z`` flat: shape (batch, dims)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        c = self._as_tensors(c)
        self._check(x, c)
        feats = self.condition_features(c)
        h = x if self.mean_net is None else x - self.mean_net(feats)
        log_det = ops.zeros((ops.shape(x)[0],), dtype=x.dtype)
        zs = []
        for layers, split, f in zip(self.flow_layers, self.split_layers, feats):
            h, ld = self._forward_segment(layers, h, f)
            log_det = log_det + ld
            if split is not None:
                y, ld = split.forward_and_log_det(h, f)
                log_det = log_det + ld
                h, z2 = split.separate(y)
                zs.append(ops.reshape(z2, (ops.shape(z2)[0], -1)))
        h = _flatten(h)
        if self.global_layers:
            h, ld = self._forward_segment(self.global_layers, h, feats[-1])
            log_det = log_det + ld
        zs.append(h)
        return ops.concatenate(zs, axis=1), log_det

    def _forward_segment(self, layers, h, f):
        if self.backprop == "inverse":  # no activations kept: see cinn.reversible
            return run_segment(layers, h, f)
        log_det = ops.zeros((ops.shape(h)[0],), dtype=h.dtype)
        for layer in layers:
            h, ld = layer(h, f)
            log_det = log_det + ld
        return h, log_det

    def latent_shapes(self, x_shape):
        """Shapes (without batch) of the latent parts, in the order ``encode``
        concatenates them, for a sample of shape ``x_shape``."""
        shape = list(x_shape)
        parts = []
        for lv in self.levels:
            if lv["downsample"]:
                shape = [shape[0] // 2, shape[1] // 2, shape[2] * 4]
            if lv["split"] is not None:
                keep = shape[-1] - shape[-1] // 2
                parts.append(tuple(shape[:-1]) + (shape[-1] - keep,))
                shape[-1] = keep
        parts.append(tuple(shape))
        return parts

    def x_shape_for(self, c):
        """Shape of one sample x (without batch) that goes with condition ``c``."""
        if not self.image or self.cond_shape is None or len(self.cond_shape) != 3:
            return tuple(self.x_shape)
        cs = ops.shape(c)
        return (self.x_shape[0] or cs[1] * self.upscale,
                self.x_shape[1] or cs[2] * self.upscale, self.x_shape[2])

    def decode(self, z, c=None):
        """``z -> x``, the inverse of ``encode``; ``z`` flat, shape (batch, dims)."""
        return self.decode_and_log_det(z, c)[0]

    def decode_and_log_det(self, z, c=None):
        """``z -> (x, log|det dx/dz|)``: ``decode`` with the log-det of the map it
        applies, shape (batch,), summed on the way (minus ``encode``'s log-det of
        that ``x``, without a second pass)."""
        c = self._as_tensors(c)
        parts = self._latent_parts(z, self.x_shape_for(c))
        return self._decode_parts_and_log_det(parts, self.condition_features(c))

    def _latent_parts(self, z, xs):
        """Flat ``z`` (batch, dims) -> one tensor per level (``latent_shapes(xs)``)."""
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        parts = self.latent_shapes(xs)
        dims = [int(np.prod(p)) if all(isinstance(d, int) for d in p) else
                math.prod(p) for p in parts]
        total = sum(dims)
        if z.shape[-1] is not None and isinstance(total, int) and z.shape[-1] != total:
            raise ValueError(f"z must have shape (batch, {total}) for x of shape "
                             f"{fmt_shape((None,) + tuple(xs))}, got {tuple(z.shape)}")
        bsz = ops.shape(z)[0]
        chunks, offset = [], 0
        for p, n in zip(parts, dims):
            chunks.append(ops.reshape(z[:, offset:offset + n], (bsz,) + tuple(p)))
            offset = offset + n
        return chunks

    def _decode_parts(self, parts, feats):
        """The inverse pass from latent ``parts`` and per-level condition ``feats``
        (already computed: ``sample`` reuses them for every chunk of samples)."""
        return self._decode_parts_and_log_det(parts, feats)[0]

    def _decode_parts_and_log_det(self, parts, feats):
        chunks = list(parts)
        h = chunks.pop()
        log_det = ops.zeros((ops.shape(h)[0],), dtype=h.dtype)
        if self.global_layers:
            shape = ops.shape(h)
            h = _flatten(h)
            for layer in reversed(self.global_layers):
                h, ld = layer.inverse_and_log_det(h, feats[-1])
                log_det = log_det + ld
            h = ops.reshape(h, shape)
        for layers, split, f in reversed(list(zip(self.flow_layers, self.split_layers, feats))):
            if split is not None:
                h, ld = split.inverse_and_log_det(split.join(h, chunks.pop()), f)
                log_det = log_det + ld
            for layer in reversed(layers):
                h, ld = layer.inverse_and_log_det(h, f)
                log_det = log_det + ld
        if self.mean_net is not None:
            h = h + self.mean_net(feats)
        return h, log_det

    def call(self, inputs, training=False):
        """``(x, c) -> (z, log_det)``; dequantisation noise is added when training."""
        x, c = (inputs, None) if self.cond_shape is None and not isinstance(
            inputs, (list, tuple)) else inputs
        if training and self.bin_width:
            x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
            noise = keras.random.uniform(ops.shape(x), -0.5, 0.5, seed=self._noise_seed)
            x = x + self.bin_width * noise
        return self.encode(x, c, training=training)

    # -- densities --------------------------------------------------------------
    def nll(self, z, log_det):
        """Negative log-likelihood in nats per sample."""
        dims = ops.cast(ops.shape(z)[1], z.dtype)
        return 0.5 * ops.sum(ops.square(z), axis=1) + 0.5 * dims * LOG_2PI - log_det

    def bits_per_dim(self, z, log_det):
        """Per-sample NLL in bits per dimension (discrete when ``bin_width`` is set)."""
        dims = ops.cast(ops.shape(z)[1], z.dtype)
        nats = self.nll(z, log_det) / dims
        if self.bin_width:
            nats = nats - math.log(self.bin_width)
        return nats / math.log(2.0)

    def log_prob(self, x, c=None):
        """``log p(x | c)`` in nats, shape (batch,)."""
        z, log_det = self.encode(x, c)
        return -self.nll(z, log_det)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z, log_det = y_pred
        bpd = self.bits_per_dim(z, log_det)
        if sample_weight is not None:
            sw = ops.cast(sample_weight, bpd.dtype)
            loss = ops.sum(bpd * sw) / ops.maximum(ops.sum(sw), 1e-12)
        else:
            loss = ops.mean(bpd)
        if self.losses:
            loss = loss + ops.sum(ops.stack(self.losses))
        # Under tf.distribute every replica's loss is summed: divide by the
        # replica count so the gradient (and the logged loss) match one device.
        return scale_loss_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        logs = super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if in_multi_worker():  # Keras cannot average scalar logs over workers
            logs = logs_for_multi_worker_reduce(logs)
        return logs

    # -- sampling ---------------------------------------------------------------
    def sample(self, c=None, n=1, temperature=1.0, seed=None, z=None, batch_size=None,
               bit_stable=False):
        """Draw ``n`` samples per condition: shape (batch, n, *x_shape), condition
        axis first (``cinn.tfp.as_distribution(model, c).sample(n)`` follows TFP's
        convention instead, sample axis first: (n, batch, *x_shape)).

        ``z ~ N(0, temperature**2 I)`` unless ``z`` (flat, (batch * n, dims),
        condition after condition) is given. A fixed integer ``seed`` gives the same
        latents however the samples are chunked (``batch_size``: samples per pass;
        see ``sample_chunks``). The samples of one pass are decoded together
        (batched: fast); the same call gives the same bytes every time, and another
        ``batch_size`` or ``n`` gives the same samples up to float rounding.
        ``bit_stable=True`` decodes every sample on its own, so that neither the
        chunk size nor ``n`` can change a bit (slower: one pass per sample).
        """
        chunks = list(self.sample_chunks(c, n, temperature, seed, z, batch_size,
                                         bit_stable=bit_stable))
        xs = tuple(chunks[0].shape[1:])
        bsz = 1 if c is None else int(ops.shape(c)[0])
        return ops.reshape(ops.concatenate(chunks, axis=0) if len(chunks) > 1 else chunks[0],
                           (bsz, n) + xs)

    def sample_chunks(self, c=None, n=1, temperature=1.0, seed=None, z=None, batch_size=None,
                      features=None, strips=None, bit_stable=False):
        """The samples of ``sample`` as a generator of chunks ``(m, *x_shape)``, sample
        ``k = b * n + i`` (``i``-th sample of condition ``b``) in order: memory for
        ``batch_size`` samples at a time, not ``n``.

        The conditioning network runs once per condition; each chunk reuses its
        features. ``batch_size=None`` picks the chunk from the size of one sample
        (about ``SAMPLE_PASS_VALUES`` values per pass; one sample for large images).
        With an integer ``seed`` the latents come in blocks of ``latent_block(dims)``
        samples, block ``j`` drawn with the stateless seed ``[seed, j]``: a sample's
        latent depends on the seed and its index only, not on ``batch_size`` (nor on
        ``n`` for the first condition).

        Decoding: each chunk of ``batch_size`` samples in one pass of the compiled
        decode (batched). A convolution or matrix product may round differently for
        another batch size, so a sample may then differ in its last float bits
        (none did in the measurements on the 2-core CPU, TensorFlow and JAX).
        ``bit_stable=True``: every sample decoded on its own, bit for bit the same
        whatever ``batch_size`` and ``n``, at one pass per sample. Batched decoding
        of the shipped models' samples (64x64 colorization, 4x super-resolution of
        16x16) on the 2-core CPU: 1.5-4.3x the samples per second at N = 8 and
        2.4-9.1x at N = 32 (TensorFlow and JAX; ``docs/speed.md``). On a GPU a pass
        of a few small samples is bound by kernel launches, not arithmetic (a pass
        of 32 colorization samples: 5.75 ms on an H200, 1% of its peak), so one
        pass per sample divides the rate by up to the batch size there.

        ``n``, ``temperature`` and ``seed`` are checked by
        ``cinn.sampling.check_sampling``. ``features``: the condition features of ``c``
        computed by the caller (e.g. in tiles, for very large images), one array per
        level, instead of ``condition_features(c)``. ``strips``: ``(rows, halo)`` to
        decode every sample in strips of ``rows`` rows of x with ``halo`` rows of
        context (``cinn.strips``): memory for a strip, not the whole image; only for
        flows whose blocks are all local and a ``halo`` beyond their receptive field.
        """
        n, temperature, seed = check_sampling(n, temperature, seed)
        if c is None:
            if self.cond_shape is not None:
                raise ValueError(f"a condition of shape {fmt_shape((None,) + self.cond_shape)}"
                                 " is needed")
            bsz, xs = 1, self.x_shape
        else:
            c = self._as_tensors(c)
            self._check_condition(c)
            bsz = int(ops.shape(c)[0])
            xs = self.x_shape_for(c)
        xs = tuple(int(d) for d in xs)
        dims, total = math.prod(xs), bsz * n
        if z is not None:
            z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
            if tuple(z.shape) != (total, dims):
                raise ValueError(f"z must have shape ({total}, {dims}), got {tuple(z.shape)}")
        feats = self.condition_features(c) if features is None else [
            None if f is None else ops.convert_to_tensor(f, dtype=self.compute_dtype)
            for f in features]
        features = None  # the caller's arrays are copied: let them go
        if batch_size is None:
            batch_size = max(1, SAMPLE_PASS_VALUES // dims)
        batch_size = max(1, int(batch_size))
        # One compiled decode (jax.jit / tf.function): JAX runs op by op when eager,
        # compiling each op for each new shape, and a TensorFlow graph frees its
        # intermediates sooner (about a quarter less peak memory on large images).
        # bit_stable: convolutions may round differently for different batch sizes,
        # so every sample is decoded on its own (a chunk changes no result).
        decode = compiled(self, "_decode_parts")
        if strips is not None and self.global_layers:
            raise ValueError("a flow with a global section cannot decode in strips")
        if strips is not None and len(xs) == 3:
            decode = functools.partial(decode_in_strips, decode, height=xs[0],
                                       rows=strips[0], halo=strips[1],
                                       multiple=2 ** self.num_down)
        if bit_stable:
            decode = functools.partial(_one_by_one, decode)
        noise = None if z is not None else _latents(dims, seed)
        for k0 in range(0, total, batch_size):
            m = min(batch_size, total - k0)
            zc = z[k0:k0 + m] if z is not None else noise.take(m)
            zc = ops.convert_to_tensor(zc, dtype=self.compute_dtype) * temperature
            rows = [k // n for k in range(k0, k0 + m)]
            fc = [None if f is None else f if bsz == 1 and m == 1 else
                  (ops.repeat(f, m, axis=0) if bsz == 1 else ops.take(f, rows, axis=0))
                  for f in feats]
            yield decode(self._latent_parts(zc, xs), fc)

    def _check_condition(self, c):
        spec = self.cond_shape
        cs = tuple(c.shape[1:])
        ok = len(cs) == len(spec) and all(s is None or d == s for d, s in zip(cs, spec))
        if not ok:
            raise ValueError(f"condition must have shape {fmt_shape((None,) + spec)}, "
                             f"got {tuple(c.shape)}")
        if self.image and len(spec) == 3:
            mult = 2 ** self.num_down
            for d in cs[:2]:
                if d is not None and (d * self.upscale) % mult:
                    raise ValueError(
                        f"condition height and width times {self.upscale} must be multiples "
                        f"of {mult}, got {tuple(c.shape)}; pad the input")

    # -- initialisation ---------------------------------------------------------
    def actnorm_layers(self):
        return [layer for layers in self.flow_layers + [self.global_layers] for layer in layers
                if isinstance(layer, B.ActNorm)]

    def initialize(self, x, c=None):
        """Data-dependent ActNorm initialisation from one batch (eager pass).

        Layers already initialised (e.g. loaded from a file) are left alone.
        """
        layers = self.actnorm_layers()
        for layer in layers:
            layer.init_from_data = True
        try:
            self.encode(x, c)
        finally:
            for layer in layers:
                layer.init_from_data = False

    @property
    def is_initialized(self):
        return all(float(ops.convert_to_numpy(a.initialized)) == 1.0
                   for a in self.actnorm_layers())

    def fit(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.fit``, after ``initialize`` from the first batch of ``x``
        when ActNorm layers were never initialised (a new model would otherwise
        train from the identity): ``x`` as ``fit`` takes it, a ``PyDataset`` or a
        ``tf.data.Dataset`` of ``((x, c),)`` batches, or arrays ``(x, c)`` (``x``
        for an unconditional flow). A one-shot iterator (a generator) cannot be
        read twice: ``ValueError`` asking for ``initialize`` first."""
        if not self.is_initialized:
            from cinn.training import first_batch

            self.initialize(*first_batch(x, conditional=self.cond_shape is not None))
        return super().fit(x, y, *args, **kwargs)

    # -- serialisation ----------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "x_shape": list(self.x_shape),
            "cond_shape": None if self.cond_shape is None else list(self.cond_shape),
            "levels": [dict(lv) for lv in self.levels],
            "cond_net": None if self.cond_net is None else
            keras.saving.serialize_keras_object(self.cond_net),
            "upscale": self.upscale,
            "clamp": self.clamp,
            "bin_width": self.bin_width,
            "seed": self.seed,
            "backprop": self.backprop,
            "mean_net": None if self.mean_net is None else
            keras.saving.serialize_keras_object(self.mean_net),
            "global_section": None if self.global_section is None else
            dict(self.global_section),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("cond_net") is not None:
            config["cond_net"] = keras.saving.deserialize_keras_object(config["cond_net"])
        if config.get("mean_net") is not None:
            config["mean_net"] = keras.saving.deserialize_keras_object(config["mean_net"])
        return cls(**config)
