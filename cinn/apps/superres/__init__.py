"""Super-resolution (SRFlow-style): many sharp HR images for one LR image, each
consistent with it (its bicubic downscale gives the LR back)."""

#: the sampling temperature of ``cinn superres``, ``cinn evaluate superres``, the demo and
#: ``infer.upscale``: the flow's own posterior, where the range of 8 samples covers the
#: true pixel as often as a calibrated posterior's, 7/9 (measured 0.791 [0.774, 0.806] at
#: 4x and 0.790 [0.765, 0.813] at 8x on 39 centre crops of set5, set14 and bsd68;
#: docs/evaluation.md); ``--temperature 0`` gives the mode-like output (the highest PSNR)
DEFAULT_TEMPERATURE = 1.0
