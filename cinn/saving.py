"""``cinn.load_model``: a saved ``.keras`` model of cinn, loaded without imports first.

Keras finds a saved layer's class by the name it was registered under
(``keras.saving.register_keras_serializable``), and a class is registered when its
module is imported. ``import cinn`` imports none of them (the names load on first
use), so ``keras.saving.load_model`` alone fails on a ``ConditionalINN`` until
``cinn.model`` and the modules of its blocks, subnets and conditioning networks have
been imported. ``load_model`` imports every module of cinn that registers classes,
then loads.
"""
import importlib

#: every module of the library (cinn outside cinn.apps) that registers Keras-serializable
#: classes (tests/test_load_model.py checks that the list is complete)
REGISTERING_MODULES = (
    "cinn.model",
    "cinn.blocks.actnorm",
    "cinn.blocks.additive",
    "cinn.blocks.autoregressive",
    "cinn.blocks.coupling",
    "cinn.blocks.downsample",
    "cinn.blocks.injector",
    "cinn.blocks.permute",
    "cinn.blocks.spline",
    "cinn.blocks.split",
    "cinn.subnets",
    "cinn.conditioning",
    "cinn.density",
)
# The apps' models register in their own modules; the library does not import the
# apps: ``cinn.apps.common.pretrained.load_model(app, weights=path)`` loads them.


def register_all():
    """Import every module in ``REGISTERING_MODULES`` (after the first call: free)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def load_model(path, compile=False, **kwargs):
    """Load a model saved with ``model.save("name.keras")``: a ``ConditionalINN``
    (with any of cinn's blocks, subnets and conditioning networks) or a density flow
    of ``cinn.density``. An app's model file (``cinn train`` runs, the shipped
    weights): ``cinn.apps.common.pretrained.load_model(app, weights=path)``.

    Args:
        path: the ``.keras`` file.
        compile: compile the model as it was compiled when saved (Keras' own
            ``compile`` argument); default ``False``: the model for inference, or to
            compile yourself before training.
        **kwargs: passed to ``keras.saving.load_model`` (``custom_objects``,
            ``safe_mode``), e.g. ``custom_objects`` for a subnet constructor of your own
            that is not registered.

    Returns:
        The model, with its weights.
    """
    register_all()
    import keras

    return keras.saving.load_model(path, compile=compile, **kwargs)
