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

``cinn.apps.common.regressor.Regressor`` gives it the part of the ``ConditionalINN``
interface that the training loop, ``cinn colorize`` and the evaluation use (the one
prediction ``n`` times); ``multiple`` the padding.
"""
import keras
from keras import ops

from cinn.apps.common.regressor import Regressor
from cinn.conditioning import depth_to_space, space_to_depth, upsample_bilinear_2x
from cinn.distribute import scale_loss_for_replicas


def fuse_levels(feats, scales, h0, w0):
    """Every level's features (``scales``: log2 of level / finest grid) upsampled
    (bilinear) to the finest grid ``(h0, w0)`` and concatenated along channels."""
    ups = []
    for f, scale in zip(feats, scales):
        if f is None:
            continue
        for _ in range(-int(scale)):
            f = upsample_bilinear_2x(f)
        ups.append(f[:, :h0, :w0])
    return ops.concatenate(ups, axis=-1)


def head_layers(hidden, zero_out=False):
    """The fusion head's two 3x3 convolutions: ``hidden`` ReLU features, then the
    4 x 2 channels that depth-to-space turns into ab at twice the grid."""
    return (keras.layers.Conv2D(hidden, 3, padding="same", activation="relu", name="fuse"),
            keras.layers.Conv2D(8, 3, padding="same", name="out",
                                kernel_initializer="zeros" if zero_out else "glorot_uniform"))


@keras.saving.register_keras_serializable(package="cinn_apps")
class MeanHead(keras.layers.Layer):
    """The regressor's head as the colorization flow's ``mean_net``: the per-level
    condition features (finest at half the image size, ``scales`` relative to it)
    -> a predicted ab (B, H, W, 2); the flow models ab minus it. Its output
    convolution starts at zero (the plain flow), unless weights are copied from a
    trained ``ColorizationRegressor`` (``copy_from``)."""

    def __init__(self, scales, hidden=32, **kwargs):
        super().__init__(**kwargs)
        self.scales = [None if s is None else int(s) for s in scales]
        self.hidden = int(hidden)
        self.fuse, self.out = head_layers(self.hidden, zero_out=True)

    def build(self, feats_shape):
        channels = sum(int(s[-1]) for s in feats_shape if s is not None)
        self.fuse.build((None, None, None, channels))
        self.out.build((None, None, None, self.hidden))

    def call(self, feats):
        finest = feats[self.scales.index(max(s for s in self.scales if s is not None))]
        h0, w0 = ops.shape(finest)[1], ops.shape(finest)[2]
        return depth_to_space(self.out(self.fuse(fuse_levels(feats, self.scales, h0, w0))))

    def receptive_radius(self):
        """An upper bound, in rows of its output, on how far it reaches into the
        features (``cinn.strips``): its 3x3 convolutions at the finest grid and the
        chained 2x bilinear upsamplings of the coarsest level, times 2 (depth-to-space)."""
        convs = sum((int(v.shape[0]) - 1) // 2 for v in self.variables if len(v.shape) == 4)
        coarsest = -min(s for s in self.scales if s is not None)
        return 2 * (convs + 2 ** (coarsest + 1))

    def copy_from(self, regressor):
        """Take the fusion head's weights of a trained ``ColorizationRegressor``."""
        self.fuse.set_weights(regressor.fuse.get_weights())
        self.out.set_weights(regressor.out.get_weights())

    def get_config(self):
        return {**super().get_config(), "scales": self.scales, "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="cinn_apps")
class ColorizationRegressor(Regressor):
    """ab = f(L) with ``cond_net`` (features at H/2, H/4, ... of the input) and a
    small fusion head; trained by L2. Inputs ``(x, c)`` with x = ab / 100 (the
    target, used only by the loss) and c = L / 50 - 1, like the flow's."""

    app = "colorization"

    def __init__(self, cond_net, head_hidden=32, multiple=8, **kwargs):
        super().__init__(**kwargs)
        self.cond_net = cond_net
        self.head_hidden = int(head_hidden)
        self._multiple = int(multiple)
        self.x_shape, self.cond_shape = (None, None, 2), (None, None, 1)
        self.fuse, self.out = head_layers(self.head_hidden)
        self.build()

    @property
    def multiple(self):
        """Height and width of inputs must be multiples of this (pad, then crop)."""
        return self._multiple

    def predict_ab(self, c):
        """Scaled ab (B, H, W, 2) for scaled L ``c`` (B, H, W, 1), H and W multiples
        of ``multiple``."""
        c = ops.convert_to_tensor(c, dtype=self.compute_dtype)
        feats = self.cond_net(space_to_depth(c))
        h0, w0 = ops.shape(c)[1] // 2, ops.shape(c)[2] // 2
        fused = fuse_levels(feats, self.cond_net.scales, h0, w0)
        return depth_to_space(self.out(self.fuse(fused)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.convert_to_tensor(x[0], dtype=y_pred.dtype)
        loss = ops.mean(ops.square(y_pred - target))
        return scale_loss_for_replicas(loss)  # summed over tf.distribute replicas

    def prediction(self, c):
        return self.predict_ab(c)

    def get_config(self):
        return {"name": self.name, "cond_net": keras.saving.serialize_keras_object(self.cond_net),
                "head_hidden": self.head_hidden, "multiple": self._multiple}
