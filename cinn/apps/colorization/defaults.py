"""The sampling defaults of the colorization app (no Keras: the command-line parsers
import them)."""

#: the sampling defaults of ``cinn colorize``, ``cinn evaluate colorization``, the
#: demo, the exported SavedModel and ``infer.colorize``: the flow's latents at
#: ``DEFAULT_TEMPERATURE``, then each sample's ab scaled by a factor log-uniform in
#: ``DEFAULT_SATURATION`` and rotated by an angle uniform in +-``DEFAULT_HUE`` degrees
#: (``cinn.apps.colorization.global_colour``; the ranges of the shipped weights' training
#: augmentation, ``configs/colorization_vivid.yaml``). README, Colorization.
DEFAULT_TEMPERATURE = 0.3
DEFAULT_SATURATION = (0.6, 2.4)
DEFAULT_HUE = 40.0
