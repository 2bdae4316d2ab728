"""The conditioning network of the colorization flow with a global section.

``GlobalConditionNet`` wraps the per-level conditioning network (pyramid or U-Net,
``cinn.apps.common.condnet``) and adds one global feature vector of L for the
flow's fully connected steps (``ConditionalINN(global_section=...)``), as in the
colorization cINN of Ardizzone et al. 2019 (``_add_fc_section``): strided 3x3
convolutions down to a 4x4 map, flattened, then a dense layer. The input has a
fixed size (the flow's working resolution), so the flattened map has too.
"""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cinn_apps")
class GlobalConditionNet(keras.layers.Layer):
    """``c -> [level features ..., global vector]``: ``local`` (the per-level net)
    on ``c``, and ``features`` numbers per sample from strided convolutions
    (``widths``, one per halving) of ``c`` to 4x4, flattened and projected."""

    def __init__(self, local, features=256, widths=(32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        if isinstance(local, dict):
            local = keras.saving.deserialize_keras_object(local)
        self.local = local
        self.features = int(features)
        self.widths = [int(w) for w in widths]
        self.scales = getattr(local, "scales", None)
        self.down = [keras.layers.Conv2D(w, 3, strides=2, padding="same", activation="relu",
                                         name=f"global_down{i}")
                     for i, w in enumerate(self.widths)]
        self.proj = keras.layers.Dense(self.features, name="global_proj")

    def build(self, c_shape):
        self.local.build(c_shape)
        shape = tuple(c_shape)
        for conv in self.down:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        if shape[1] is None or shape[2] is None:
            raise ValueError("GlobalConditionNet needs a condition of fixed height and width")
        self.proj.build((shape[0], shape[1] * shape[2] * shape[3]))
        self.built = True

    def call(self, c):
        g = c
        for conv in self.down:
            g = conv(g)
        g = ops.reshape(g, (ops.shape(g)[0], -1))
        return list(self.local(c)) + [self.proj(g)]

    def get_config(self):
        return {**super().get_config(), "local": keras.saving.serialize_keras_object(self.local),
                "features": self.features, "widths": self.widths}
