"""Colorization: a greyscale photo in (CIE L), many plausible colourings out (ab).

``colorize(model, image, n, temperature, seed)`` is the Python entry point.
"""


def colorize(*args, **kwargs):
    """See ``cinn.apps.colorization.infer.colorize``."""
    # here, not at the top: infer imports Keras, which `cinn --help` should not wait for
    from cinn.apps.colorization.infer import colorize as _colorize

    return _colorize(*args, **kwargs)
