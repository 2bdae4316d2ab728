"""XLA's CPU convolutions through Eigen rather than YNNPACK, for the JAX backend.

jaxlib 0.10 hands convolutions, matrix products, reductions and element-wise fusions
to YNNPACK ("ynn fusions") by default. For the 3x3 convolutions of cinn's subnets
YNNPACK runs at about half the speed of XLA's own (Eigen) convolutions on an AVX-512
CPU: a 3x3 convolution of 71 -> 64 channels on 8 x 40 x 40 takes 32 ms forward +
backward with YNNPACK and 20 ms without (PyTorch's oneDNN: 21 ms). YNNPACK's
element-wise fusions, on the other hand, sample the small-channel colorization flow
1.4x faster than XLA's own loops. So cinn keeps YNNPACK for reductions and element-wise
fusions only (``FUSIONS``): against the default, the bare 4x super-resolution flow
trains 1.2x and samples 1.25x faster, the colorization flow trains 1.2-1.5x faster and
samples as fast (``python -m benchmarks.bench``; README, Speed).

XLA reads ``XLA_FLAGS`` once, when ``jax`` is first imported, so ``cinn`` adds
``--xla_cpu_experimental_ynn_fusion_type=reduce,eltwise`` to it on import, before it
imports Keras, when all of these hold:

* Keras will run on JAX (``KERAS_BACKEND``, else ``keras.json``);
* ``jax`` is not imported yet (import ``cinn`` before ``jax`` or ``keras``, or set
  the flag yourself);
* the installed jaxlib is in ``TESTED_JAXLIB`` (an older XLA stops the process on a
  flag it does not know; a newer one may have fixed its convolutions);
* ``XLA_FLAGS`` does not set ``xla_cpu_experimental_ynn_fusion_type`` already (a
  user's choice wins; ``CINN_XLA_CPU=default`` leaves XLA's defaults alone).

The flag only concerns XLA's CPU code; a GPU is not affected.
"""
import json
import os
import sys
from importlib import metadata

from cinn._versions import in_range, major_minor

FLAG = "xla_cpu_experimental_ynn_fusion_type"
#: the fusions XLA still gives to YNNPACK (not convolutions, not matrix products)
FUSIONS = "reduce,eltwise"
#: jaxlib versions the flag was measured with: from (inclusive), to (exclusive)
TESTED_JAXLIB = ((0, 10), (0, 11))


def keras_backend_name(environ=None):
    """The backend Keras will pick: ``KERAS_BACKEND``, else ``backend`` of
    ``$KERAS_HOME/keras.json`` (default ``~/.keras``), else ``"tensorflow"``."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"]
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def jaxlib_version():
    """``(major, minor)`` of the installed jaxlib, or ``None``."""
    try:
        return major_minor(metadata.version("jaxlib"))
    except (metadata.PackageNotFoundError, ValueError, IndexError):
        return None


def in_tested_range(version):
    """Whether jaxlib ``(major, minor)`` ``version`` (``None``: none) is in ``TESTED_JAXLIB``."""
    return version is not None and in_range(version, TESTED_JAXLIB)


def eigen_convolutions_flags(environ=None, jax_imported=None, version=None):
    """The ``XLA_FLAGS`` value to set, or ``None`` to leave it as it is. ``jax_imported``
    and ``version`` (jaxlib's ``(major, minor)``) default to the running process's; the
    installed jaxlib is looked up only when the other conditions hold."""
    environ = os.environ if environ is None else environ
    jax_imported = "jax" in sys.modules if jax_imported is None else jax_imported
    flags = environ.get("XLA_FLAGS", "")
    if (keras_backend_name(environ) != "jax" or jax_imported or FLAG in flags
            or environ.get("CINN_XLA_CPU") == "default"):
        return None
    if not in_tested_range(jaxlib_version() if version is None else version):
        return None
    return f"{flags} --{FLAG}={FUSIONS}".strip()


def use_eigen_convolutions():
    """Set ``XLA_FLAGS`` as ``eigen_convolutions_flags`` says; whether it did."""
    flags = eigen_convolutions_flags()
    if flags is not None:
        os.environ["XLA_FLAGS"] = flags
    return flags is not None
