"""The learned fill: a U-Net over the Telea-filled image and the mask, trained with an
L2 loss on the hole to predict the residual ``image - Telea fill``.

On its own it is the deterministic baseline of the evaluation (``--weights`` of a
regressor file: its one prediction counts as every sample). Inside the flow
(``model.fill_init``) it refines the fill that the flow is conditioned on and samples
around: the flow then models the spread of the hole around the L2 optimum instead of
around Telea's fill, which likelihood training alone did not move (README, Inpainting).

It trains through ``cinn train inpainting`` like the flow (config ``model: {type:
regressor, ...}``, ``configs/inpainting_l2.yaml``), so checkpoints, resuming,
``--init`` and the NaN guard apply unchanged; ``cinn.apps.common.regressor.Regressor`` gives
it the flow's sampling interface (the one prediction ``n`` times), ``num_down`` the
padding that ``cinn inpaint`` applies.
"""
import keras
from keras import ops

from cinn.apps.common.regressor import Regressor
from cinn.conditioning import depth_to_space, space_to_depth
from cinn.distribute import scale_loss_for_replicas


@keras.saving.register_keras_serializable(package="cinn_apps")
class InpaintingRegressor(Regressor):
    """residual = f(c) for the inpainting condition c (B, H, W, 4): Telea-filled image
    (flow-scaled) and mask. ``cond_net`` runs on the space-to-depth condition (H/2, 16
    channels: a quarter of the cost of full resolution) and has one output of 12
    channels at that grid (``UNetConditionNet(scales=[0], channels=12)``), which
    depth-to-space turns into the 3-channel residual. The prediction is zero outside
    the hole. Inputs ``(x, c)`` as the flow's (x: the residual in the hole, used only
    by the loss)."""

    app = "inpainting"

    def __init__(self, cond_net, num_down=4, **kwargs):
        super().__init__(**kwargs)
        self.cond_net = cond_net
        self.num_down = int(num_down)
        self.x_shape, self.cond_shape = (None, None, 3), (None, None, 4)
        self.build()
        # A fresh model predicts zero (the fill starts as Telea's): from a random output
        # layer the first steps' large errors left the U-Net's ReLUs dead and the fill
        # stuck at Telea's (measured: 0.98 of Telea's hole MSE after 200 steps, against
        # 0.87 from a zero start). Loading a file overwrites these weights.
        for v in self.cond_net.heads[0].weights:
            v.assign(ops.zeros(v.shape, v.dtype))

    @property
    def multiple(self):
        """Height and width of inputs must be multiples of this (pad, then crop)."""
        return 2 ** self.num_down

    def predict_residual(self, c):
        """The predicted ``image - fill`` (B, H, W, 3), zero outside the hole."""
        c = ops.convert_to_tensor(c, dtype=self.compute_dtype)
        return depth_to_space(self.cond_net(space_to_depth(c))[0]) * c[..., 3:]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target, c = x
        hole = ops.convert_to_tensor(c, dtype=y_pred.dtype)[..., 3:]
        target = ops.convert_to_tensor(target, dtype=y_pred.dtype)
        loss = ops.sum(hole * ops.square(y_pred - target)) / ops.maximum(3 * ops.sum(hole), 1.0)
        return scale_loss_for_replicas(loss)  # summed over tf.distribute replicas

    def prediction(self, c):
        return self.predict_residual(c)

    def get_config(self):
        return {"name": self.name, "cond_net": keras.saving.serialize_keras_object(self.cond_net),
                "num_down": self.num_down}
