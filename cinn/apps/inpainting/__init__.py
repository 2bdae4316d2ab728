"""Inpainting: fill a masked hole with many plausible completions.

The cINN models the image (scaled to [-0.5, 0.5]) given a 4-channel condition,
the masked image and the mask. Known pixels are copied back from the input.
"""

#: the sampling temperature of ``cinn inpaint``, ``cinn evaluate inpainting``, the
#: demo and ``infer.inpaint``: its single samples keep the learned fill's structure
#: (bsd68 hole SSIM above Telea's, README, Inpainting); raise it for more varied holes
DEFAULT_TEMPERATURE = 0.2
