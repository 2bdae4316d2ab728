"""The colorization task for ``cinn train`` and ``cinn evaluate``."""
from apps.colorization.data import make_datasets  # noqa: F401
from apps.colorization.model import build_model  # noqa: F401


def evaluate(args):
    from apps.colorization.evaluate import run

    return run(args)
