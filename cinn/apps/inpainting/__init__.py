"""Inpainting: fill a masked hole with many plausible completions.

The cINN models the image (scaled to [-0.5, 0.5]) given a 4-channel condition,
the masked image and the mask. Known pixels are copied back from the input.
"""

#: the sampling temperature of ``cinn inpaint``, ``cinn evaluate inpainting``, the demo
#: and ``infer.inpaint``: the flow's own posterior, at the temperature where the range of
#: 8 samples covers the true hole pixel as often as a calibrated posterior's, 7/9
#: (1.09 over all 124 images of set14, kodak24, mcmaster18 and bsd68, full size; at 1.1
#: the coverage is 0.786 [0.766, 0.804]; docs/evaluation.md); ``--temperature 0`` gives
#: the flow's mode, near the learned fill
DEFAULT_TEMPERATURE = 1.1
