"""The sampling defaults of the colorization app, in one place (no Keras: the
command-line parsers import them).

Every consumer follows them: ``cinn colorize``, ``cinn evaluate colorization``,
``cinn.apps.colorization.colorize()`` / ``iter_colorize()``, the demo's colorization
tab, ``cinn export colorization`` and ``cinn.apps.common.pretrained.load_model
("colorization")``. docs/colorization.md, "Defaults".

- the weights: ``DEFAULT_WEIGHTS`` in ``saved_models/colorization/``, the flow with
  global latents (a 64x64 working size; ``infer`` shrinks L to it and brings each
  sample back to the photo's size by guided upsampling with the full-resolution L);
- its global latents at ``DEFAULT_TEMPERATURE``, its other (local) latents at
  ``DEFAULT_LOCAL_TEMPERATURE``;
- no post-hoc global colour draw: ``--saturation LO HI`` / ``--hue DEG`` (the ranges
  ``DRAW_SATURATION``, ``DRAW_HUE`` of the former default) are a creative option,
  off unless given (``DEFAULT_SATURATION = None``, ``DEFAULT_HUE = 0``).

A flow without global latents (``--weights .../model.keras``, the former default):
all its latents are local, so they are sampled at one temperature, ``--temperature``
when given, else ``--local-temperature`` when given, else
``DEFAULT_LOCAL_TEMPERATURE`` (``temperatures``).
"""

#: the default weights file in ``saved_models/colorization/``
DEFAULT_WEIGHTS = "colorization_global.keras"
#: temperature of the global latents (a flow with a global section)
DEFAULT_TEMPERATURE = 1.15
#: temperature of the local latents (every latent of a flow without a global section)
DEFAULT_LOCAL_TEMPERATURE = 0.5
#: the post-hoc global colour draws: off by default
DEFAULT_SATURATION = None
DEFAULT_HUE = 0.0
#: the former default draws (``configs/colorization_vivid.yaml``'s augmentation ranges),
#: quoted in the help and the docs as a starting point for ``--saturation``/``--hue``
DRAW_SATURATION = (0.6, 2.4)
DRAW_HUE = 40.0


def temperatures(has_global, temperature=None, local_temperature=None):
    """``(global, local)`` temperatures of a flow (``None``: the default).

    ``has_global``: the flow has a global section. Without one all latents are local
    and take one temperature: ``temperature`` when given, else ``local_temperature``,
    else ``DEFAULT_LOCAL_TEMPERATURE``; both numbers returned are then that one."""
    if has_global:
        return (DEFAULT_TEMPERATURE if temperature is None else temperature,
                DEFAULT_LOCAL_TEMPERATURE if local_temperature is None else local_temperature)
    one = next(t for t in (temperature, local_temperature, DEFAULT_LOCAL_TEMPERATURE)
               if t is not None)
    return one, one
