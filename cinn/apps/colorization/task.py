"""The colorization task for ``cinn train`` (evaluation: ``cinn.apps.colorization.evaluate``)."""
from cinn.apps.colorization.data import DATA_DEFAULTS, make_datasets  # noqa: F401
from cinn.apps.colorization.model import build_model  # noqa: F401



def render_samples(c, samples, model=None):
    """The per-epoch picture of ``cinn train`` (TensorBoard, ``samples/epoch-NNN.png``):
    per validation input a row grey input | its colourings | their uncertainty map.
    ``c``: (B, H, W, 1) scaled L, ``samples``: (B, n, H, W, 2) scaled ab."""
    import numpy as np

    from cinn.apps.colorization.color import merge_lab, to_uint8
    from cinn.apps.common.uncertainty import sample_rows

    c, ab = np.asarray(c, "float32"), np.asarray(samples, "float32")
    rgb = to_uint8(merge_lab(np.broadcast_to(c[:, None], ab.shape[:-1] + (1,)), ab))
    grey = to_uint8(merge_lab(c, np.zeros(c.shape[:-1] + (2,), "float32")))
    return sample_rows(grey, rgb)
