"""The colorization cINN: models ab given L (Ardizzone et al. 2019 style).

Haar downsampling levels with conditional affine couplings; a conditioning
network (``cinn.apps.common.condnet``: pyramid or U-Net, trained jointly with the flow)
turns L into one feature map per level at that level's resolution.
``use_condition=False`` gives the same flow fed an all-zero condition: the
unconditional baseline of the evaluation.
"""
import keras
from keras import ops

from cinn.apps.colorization.color import AB_SCALE
from cinn import ConditionalINN
from cinn.apps.colorization.global_net import GlobalConditionNet
from cinn.apps.colorization.regressor import ColorizationRegressor, MeanHead
from cinn.apps.common.condnet import build_cond_net
from cinn._keras_compat import sublayers
from cinn.conditioning import space_to_depth

#: architecture defaults (``configs/colorization.yaml``'s ``model`` section overrides)
DEFAULTS = {
    "conditional": True,
    "levels": 3,              # Haar levels
    "blocks": 3,              # couplings per level
    "split": "plain",         # factor half the channels out after every level but the last
    "subnet": {"hidden": 32, "depth": 2},
    "cond_channels": 24,      # condition features per level
    "cond_hidden": 32,        # width of the conditioning network
    "cond_blocks": 1,         # residual blocks of its trunk
    "cond_squeeze": True,     # space-to-depth L first: the conditioning net runs at H/2
    "cond_net": "pyramid",    # "pyramid": ConditionNet (stem, residual blocks, stride-2
                              # convs); "unet": UNetConditionNet (encoder-decoder with a
                              # global context: its features see the whole crop)
    "cond_widths": [32, 48, 64, 96],  # unet: width at H/2, H/4, H/8, H/16 (cond_blocks
                              # residual blocks at each)
    "cond_context": True,     # unet: the bottleneck's global mean added everywhere
    "type": "flow",           # "flow": the cINN; "regressor": the deterministic L2
                              # baseline on the same conditioning net (regressor.py)
    "head_hidden": 32,        # regressor and mean head: width of the fusion head
    "mean_head": False,       # flow: model ab minus a predicted mean (the regressor's
                              # head on the conditioning features, ``MeanHead``)
    "mean_init": None,        # flow with mean_head: a ColorizationRegressor .keras file
                              # whose conditioning net and head weights the new model
                              # starts from (same cond_net options)
    "clamp": 2.0,
    "seed": 0,
    # the global section (docs/colorization.md, "Global colour"): the flow works at a
    # fixed size x size (``infer`` resizes L to it and upsamples ab guided by the
    # full-resolution L); after the last level its kept latents are flattened and go
    # through global_blocks fully connected couplings conditioned on a global vector of L
    "size": None,             # working resolution (side in pixels); needed by global_blocks
    "global_blocks": 0,       # fully connected flow steps at the end (0: none)
    "global_hidden": 512,     # width of their dense subnets
    "global_depth": 2,        # hidden layers of their dense subnets
    "global_features": 256,   # global feature vector of L (strided convs to 4x4, dense)
    "global_widths": [32, 64, 128],  # its strided convolutions (one per halving)
    "levels_init": None,      # a colorization flow .keras file whose level and
                              # conditioning-net layers of the same name and shape the
                              # new model starts from (warm start of the local part)
}


@keras.saving.register_keras_serializable(package="cinn_apps")
class ColorizationINN(ConditionalINN):
    """``ConditionalINN`` over ab (2 channels) conditioned on L (1 channel)."""

    app = "colorization"

    def __init__(self, *args, use_condition=True, cond_squeeze=False, **kwargs):
        self.use_condition = bool(use_condition)
        self.cond_squeeze = bool(cond_squeeze)
        super().__init__(*args, **kwargs)

    def encode(self, x, c=None, training=False):
        """``ConditionalINN.encode``; a flow of a fixed working size (a global section)
        shrinks ``x`` and ``c`` of another size to it first (bilinear, antialiased):
        the density it gives a photo is that of its ab at the working size."""
        size = self.x_shape[:2]
        # static shapes may be unknown (a traced function): resize unless known equal
        if c is not None and None not in size and tuple(x.shape[1:3]) != size:
            x, c = (ops.image.resize(ops.convert_to_tensor(t, self.compute_dtype), size,
                                     interpolation="bilinear", antialias=True)
                    for t in (x, c))
        return super().encode(x, c, training=training)

    def condition_features(self, c):
        if c is not None and not self.use_condition:
            c = ops.zeros_like(c)
        if c is not None and self.cond_squeeze:
            c = space_to_depth(c)
        return super().condition_features(c)

    @property
    def multiple(self):
        """Height and width of inputs must be multiples of this (pad, then crop)."""
        return 2 ** self.num_down

    def get_config(self):
        return {**super().get_config(), "use_condition": self.use_condition,
                "cond_squeeze": self.cond_squeeze}


def build_model(cfg=None):
    """A fresh ``ColorizationINN`` from a config's ``model`` section."""
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown colorization model option(s) {sorted(unknown)}; "
                         f"known: {sorted(DEFAULTS)}")
    n = int(cfg["levels"])
    glob = int(cfg["global_blocks"])
    subnet = {"type": "conv", **dict(cfg["subnet"])}
    # with a global section the last level splits too: its kept half is the global part
    levels = [{"downsample": "haar", "blocks": int(cfg["blocks"]), "subnet": subnet,
               "split": cfg["split"] if i < n - 1 or glob else None} for i in range(n)]
    squeeze = bool(cfg["cond_squeeze"])
    scales = [-(i + 1) + int(squeeze) for i in range(n)]
    cond_net = build_cond_net(cfg, scales)
    size = None if cfg["size"] is None else int(cfg["size"])
    if size is not None and (size <= 0 or size % 2 ** n):
        raise ValueError(f"model.size must be a positive multiple of {2 ** n}, got {size}")
    global_section = None
    if glob:
        if size is None or cfg["type"] != "flow":
            raise ValueError("model.global_blocks needs a flow with a working size "
                             "(model.size)")
        cond_net = GlobalConditionNet(cond_net, features=int(cfg["global_features"]),
                                      widths=cfg["global_widths"], name="global_cond_net")
        global_section = {"blocks": glob,
                          "subnet": {"type": "dense", "hidden": int(cfg["global_hidden"]),
                                     "depth": int(cfg["global_depth"])}}
    if cfg["type"] == "regressor":
        if not squeeze:
            raise ValueError("the colorization regressor needs cond_squeeze: true")
        return ColorizationRegressor(cond_net, head_hidden=int(cfg["head_hidden"]),
                                     multiple=2 ** n, name="colorization_l2")
    if cfg["type"] != "flow":
        raise ValueError(f"model.type must be 'flow' or 'regressor', got {cfg['type']!r}")
    mean_net = None
    if cfg["mean_head"]:
        if not squeeze:
            raise ValueError("the colorization mean head needs cond_squeeze: true")
        mean_net = MeanHead(cond_net.scales,
                            hidden=int(cfg["head_hidden"]), name="mean_head")
    elif cfg["mean_init"]:
        raise ValueError("model.mean_init needs mean_head: true")
    model = ColorizationINN(
        x_shape=(size, size, 2), cond_shape=(size, size, 1), levels=levels, cond_net=cond_net,
        clamp=float(cfg["clamp"]), bin_width=1.0 / AB_SCALE, seed=int(cfg["seed"]),
        use_condition=bool(cfg["conditional"]), cond_squeeze=squeeze, mean_net=mean_net,
        global_section=global_section, name="colorization_cinn")
    if cfg["mean_init"]:
        init_from_regressor(model, cfg["mean_init"])
    if cfg["levels_init"]:
        init_levels(model, cfg["levels_init"])
    return model


def _named_layers(layer):
    return {sub.name: sub for sub in sublayers(layer)}


def init_levels(model, path):
    """Copy, from the colorization flow in ``path``, the weights of every flow-level
    layer and conditioning-net layer whose name and weight shapes match ``model``'s
    (the local part of a flow with a global section starts from a trained flow of
    the same levels); returns how many layers were copied."""
    from cinn.apps.common.pretrained import load_model  # one-line errors for bad files

    source = load_model("colorization", path)
    if not isinstance(source, ColorizationINN):
        raise ValueError(f"{path}: model.levels_init must be a colorization flow, "
                         f"got {type(source).__name__}")
    copied = 0
    mine = {layer.name: layer for layers in model.flow_layers for layer in layers}
    pairs = [(mine.get(layer.name), layer) for layers in source.flow_layers for layer in layers]
    net = model.cond_net.local if isinstance(model.cond_net, GlobalConditionNet) else model.cond_net
    if net is not None and source.cond_net is not None:
        theirs, ours = _named_layers(source.cond_net), _named_layers(net)
        pairs += [(ours.get(name), layer) for name, layer in theirs.items()
                  if not sublayers(layer, recursive=False)]
    for dst, src in pairs:
        if dst is None or not src.weights:
            continue
        a, b = dst.get_weights(), src.get_weights()
        if len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b)):
            dst.set_weights(b)
            copied += 1
    if not copied:
        raise ValueError(f"{path}: no layer of model.levels_init matches this model")
    return copied


def init_from_regressor(model, path):
    """Copy the conditioning net and fusion head of the ``ColorizationRegressor`` in
    ``path`` into ``model`` (a flow with a ``MeanHead``): the flow then starts from the
    regressor's prediction as its mean."""
    from cinn.apps.common.pretrained import load_model  # one-line errors for bad files

    regressor = load_model("colorization", path)
    if not isinstance(regressor, ColorizationRegressor):
        raise ValueError(f"{path}: model.mean_init must be a colorization regressor "
                         f"(type: regressor), got {type(regressor).__name__}")
    try:
        model.cond_net.set_weights(regressor.cond_net.get_weights())
    except ValueError as e:
        raise ValueError(f"{path}: its conditioning net does not match this model's "
                         f"(same cond_net options needed): {e}") from None
    model.mean_net.copy_from(regressor)
