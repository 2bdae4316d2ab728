"""cinn: conditional invertible neural networks on Keras 3 (TensorFlow or JAX).

``import cinn`` changes nothing global and imports no backend: the names below load
on first use (PEP 562). ``cinn.load_model(path)`` loads a saved ``.keras`` model (it
imports the modules that register cinn's Keras classes first). ``cinn.tune_cpu()``,
called before Keras or JAX are imported, applies cinn's XLA CPU tuning
(``cinn/_xla_cpu.py``); the ``cinn`` command line calls it itself.
"""
import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_NAMES = {"ConditionalINN": "cinn.model", "CinnError": "cinn.errors",
          "load_model": "cinn.saving"}
_SUBMODULES = ("blocks", "conditioning", "subnets", "diagnostics", "density",
               "map_inpainting")
__all__ = ["ConditionalINN", "CinnError", "load_model", *_SUBMODULES, "tune_cpu",
           "__version__"]


def tune_cpu():
    """Compile JAX's CPU convolutions with XLA's own (Eigen) kernels rather than
    YNNPACK's, which run cinn's 3x3 convolutions at about half the speed
    (``cinn/_xla_cpu.py``). Call it before Keras or JAX are imported; it sets the
    ``XLA_FLAGS`` environment variable of this process only on the JAX backend, only
    for the tested jaxlib and never over a flag of your own. Returns whether it did."""
    from cinn._xla_cpu import use_eigen_convolutions

    return use_eigen_convolutions()


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"cinn.{name}")
    else:
        raise AttributeError(f"module 'cinn' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
