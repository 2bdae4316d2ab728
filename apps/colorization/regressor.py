"""The deterministic baseline of Ardizzone et al. (2019): the cINN's conditioning
network, trained with an L2 loss to predict ab from L.

``ColorizationRegressor`` runs the conditioning network of the colorization
cINN (same class and options, e.g. the U-Net of ``cond_net: unet``) on the
space-to-depth L and a small head on its per-level features: every level's
features are upsampled (bilinear) to the finest level's grid (H/2), concatenated,
and two 3x3 convolutions give 4 x 2 channels that depth-to-space turns into ab at
full resolution. The loss is the mean squared error of ``ab / 100`` (the flow's
units); training runs through ``cinn train colorization`` like the flow (config
``model: {type: regressor, ...}``, ``configs/colorization_l2.yaml``), so
checkpoints, resuming, ``--init`` and the NaN guard apply unchanged.

It mimics the part of the ``ConditionalINN`` interface that the training loop,
``cinn colorize`` and the evaluation use: ``sample`` and ``sample_chunks`` return the
one prediction ``n`` times (temperature and seed are ignored), ``multiple``, ``app``.
"""
import keras
from keras import ops

from cinn.conditioning import depth_to_space, space_to_depth, upsample_bilinear_2x
from cinn.distribute import scale_loss_for_replicas


@keras.saving.register_keras_serializable(package="cinn_apps")
class ColorizationRegressor(keras.Model):
    """ab = f(L) with ``cond_net`` (features at H/2, H/4, ... of the input) and a
    small fusion head; trained by L2. Inputs ``(x, c)`` with x = ab / 100 (the
    target, used only by the loss) and c = L / 50 - 1, like the flow's."""

    app = "colorization"
    image = True

    def __init__(self, cond_net, head_hidden=32, multiple=8, **kwargs):
        super().__init__(**kwargs)
        self.cond_net = cond_net
        self.head_hidden = int(head_hidden)
        self._multiple = int(multiple)
        self.x_shape, self.cond_shape = (None, None, 2), (None, None, 1)
        self.fuse = keras.layers.Conv2D(self.head_hidden, 3, padding="same", activation="relu",
                                        name="fuse")
        self.out = keras.layers.Conv2D(8, 3, padding="same", name="out")
        self.build()

    @property
    def multiple(self):
        """Height and width of inputs must be multiples of this (pad, then crop)."""
        return self._multiple

    @property
    def is_initialized(self):  # nothing data-dependent (the training loop asks)
        return True

    def build(self, input_shape=None):
        if self.built:
            return
        self.predict_ab(ops.zeros((1, self._multiple, self._multiple, 1)))
        self.built = True

    def predict_ab(self, c):
        """Scaled ab (B, H, W, 2) for scaled L ``c`` (B, H, W, 1), H and W multiples
        of ``multiple``."""
        c = ops.convert_to_tensor(c, dtype=self.compute_dtype)
        feats = self.cond_net(space_to_depth(c))
        h0, w0 = ops.shape(c)[1] // 2, ops.shape(c)[2] // 2
        ups = []
        for f, scale in zip(feats, self.cond_net.scales):  # scale: log2(level / (H/2))
            if f is None:
                continue
            for _ in range(-int(scale)):
                f = upsample_bilinear_2x(f)
            ups.append(f[:, :h0, :w0])
        return depth_to_space(self.out(self.fuse(ops.concatenate(ups, axis=-1))))

    def call(self, inputs, training=False):
        _, c = inputs
        return self.predict_ab(c)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.convert_to_tensor(x[0], dtype=y_pred.dtype)
        loss = ops.mean(ops.square(y_pred - target))
        return scale_loss_for_replicas(loss)  # summed over tf.distribute replicas

    def sample(self, c, n=1, temperature=None, seed=None, batch_size=None, **_):
        """The prediction ``n`` times: shape (B, n, H, W, 2) (a deterministic model)."""
        ab = self.predict_ab(c)
        return ops.repeat(ab[:, None], int(n), axis=1)

    def sample_chunks(self, c, n=1, temperature=None, seed=None, batch_size=None, **_):
        """``sample`` as chunks of at most ``batch_size`` rows ``(m, H, W, 2)``, row
        ``b * n + i`` being condition ``b``'s prediction (the flow's interface)."""
        ab = self.predict_ab(c)
        rows = ops.repeat(ab, int(n), axis=0)
        total = int(ops.shape(rows)[0])
        step = int(batch_size) if batch_size else total
        for i in range(0, total, step):
            yield rows[i:i + step]

    def get_config(self):
        return {"name": self.name, "cond_net": keras.saving.serialize_keras_object(self.cond_net),
                "head_hidden": self.head_hidden, "multiple": self._multiple}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cond_net"] = keras.saving.deserialize_keras_object(config["cond_net"])
        return cls(**config)
