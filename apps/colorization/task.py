"""The colorization task for ``cinn train`` (evaluation: ``apps.colorization.evaluate``)."""
from apps.colorization.data import make_datasets  # noqa: F401
from apps.colorization.model import build_model  # noqa: F401

