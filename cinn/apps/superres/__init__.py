"""Super-resolution (SRFlow-style): many sharp HR images for one LR image, each
consistent with it (its bicubic downscale gives the LR back)."""
