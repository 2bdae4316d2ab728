"""The conditioning network of an app's flow, from the ``model`` section of its config.

Keys (each app's ``DEFAULTS`` gives their values):

* ``cond_net``: ``"pyramid"`` (``cinn.conditioning.ConditionNet``: stem, residual
  blocks, stride-2 convs; small receptive field) or ``"unet"``
  (``cinn.conditioning.UNetConditionNet``: encoder-decoder with a global context, its
  features see the whole input);
* ``cond_channels``: features per flow level; ``cond_blocks``: residual blocks (pyramid:
  of the trunk; unet: at each depth);
* pyramid: ``cond_hidden`` (width); unet: ``cond_widths`` (width per depth) and
  ``cond_context`` (the bottleneck's global mean added everywhere).
"""
from cinn.conditioning import ConditionNet, UNetConditionNet

COND_NETS = ("pyramid", "unet")


def build_cond_net(cfg, scales, name="cond_net"):
    """The conditioning network for flow levels at ``scales`` (log2 of level / condition
    resolution, one per level) from a merged ``model`` config ``cfg``."""
    kind = cfg.get("cond_net", "pyramid")
    if kind == "unet":
        return UNetConditionNet(scales, channels=int(cfg["cond_channels"]),
                                widths=[int(w) for w in cfg["cond_widths"]],
                                blocks=int(cfg["cond_blocks"]),
                                global_context=bool(cfg["cond_context"]), name=name)
    if kind == "pyramid":
        return ConditionNet(scales=scales, channels=int(cfg["cond_channels"]),
                            hidden=int(cfg["cond_hidden"]),
                            trunk_blocks=int(cfg["cond_blocks"]), name=name)
    raise ValueError(f"model.cond_net must be one of {COND_NETS}, got {kind!r}")
