"""Inpainting: fill a masked hole with many plausible completions.

The cINN models the image (scaled to [-0.5, 0.5]) given a 4-channel condition,
the masked image and the mask. Known pixels are copied back from the input.
"""
