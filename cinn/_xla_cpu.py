"""XLA's CPU convolutions through Eigen rather than YNNPACK, for the JAX backend.

jaxlib 0.10 hands convolutions, matrix products, reductions and element-wise fusions
to YNNPACK ("ynn fusions") by default. For the 3x3 convolutions of cinn's subnets
YNNPACK runs at about half the speed of XLA's own (Eigen) convolutions on an AVX-512
CPU: a 3x3 convolution of 71 -> 64 channels on 8 x 40 x 40 takes 32 ms forward +
backward with YNNPACK and 20 ms without (PyTorch's oneDNN: 21 ms).

YNNPACK's element-wise fusions are a trade: XLA lets them take in the convolution that
feeds them (convolution + bias + ReLU becomes one YNNPACK fusion), so with them the
forward convolutions run in YNNPACK again. For training that loses: without
element-wise fusions the bare colorization flow trains 3-6% faster (6 interleaved
pairs) and the 4x super-resolution flow as fast, within the machine's noise (README,
Speed). For sampling it depends on the width of the convolutions: YNNPACK runs 3x3
convolutions of up to 64 input channels faster than Eigen and wider ones slower (two
3x3 convolutions with bias and ReLU on 8 x 40 x 40: 32 channels 2.5 against 3.1 ms,
64: 9.6 against 11.7, 96: 26.9 against 22.3). The small-channel colorization flow
(widest 3x3 input: 40 channels) samples 1.4x faster with them (13 against 18-20 ms a
pass of 8); the super-resolution model (subnet inputs of 70-184 channels) samples
7-9% slower. So cinn sets two things:

* ``FUSIONS`` for the whole process: reductions only. This is what the training step
  that Keras compiles (``model.fit``) gets.
* ``compiler_options(platform, kernel_shapes)``: reductions and element-wise fusions,
  passed to ``jax.jit`` for the programs cinn compiles itself
  (``cinn.compile.compiled``: sampling, encoding) where no 3x3 (or larger)
  convolution has more than ``NARROW_INPUTS`` input channels.

XLA reads ``XLA_FLAGS`` once, when ``jax`` is first imported, so ``cinn`` adds
``--xla_cpu_experimental_ynn_fusion_type=reduce`` to it on import, before it imports
Keras, when all of these hold:

* Keras will run on JAX (``KERAS_BACKEND``, else ``keras.json``);
* ``jax`` is not imported yet (import ``cinn`` before ``jax`` or ``keras``, or set
  the flag yourself);
* the installed jaxlib is in ``TESTED_JAXLIB`` (an older XLA stops the process on a
  flag it does not know; a newer one may have fixed its convolutions);
* ``XLA_FLAGS`` does not set ``xla_cpu_experimental_ynn_fusion_type`` already (a
  user's choice wins; ``CINN_XLA_CPU=default`` leaves XLA's defaults alone).

``compiler_options()`` is empty unless cinn set the flag in this process. Both only
concern XLA's CPU code; a GPU is not affected.
"""
import json
import os
import sys
from importlib import metadata

from cinn._versions import in_range, major_minor

FLAG = "xla_cpu_experimental_ynn_fusion_type"
#: the fusions XLA still gives to YNNPACK in the whole process (``model.fit``'s step)
FUSIONS = "reduce"
#: the fusions of the programs cinn compiles itself, as ``jax.jit`` compiler options
#: spell them (enum names; the ``XLA_FLAGS`` spelling is refused there)
COMPILED_FUSIONS = "LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_ELTWISE"
#: the widest input (channels) of a spatial convolution for which a compiled program
#: still gets ``COMPILED_FUSIONS``
NARROW_INPUTS = 64
#: jaxlib versions the flag was measured with: from (inclusive), to (exclusive)
TESTED_JAXLIB = ((0, 10), (0, 11))

_set_by_cinn = False  # whether ``use_eigen_convolutions`` set the flag in this process


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
    global _set_by_cinn
    flags = eigen_convolutions_flags()
    if flags is not None:
        os.environ["XLA_FLAGS"] = flags
        _set_by_cinn = True
    return flags is not None


def compiler_options(platform, kernel_shapes=()):
    """``jax.jit``'s ``compiler_options`` for a program cinn compiles itself for
    ``platform`` (``"cpu"``, ``"gpu"``, ...) from a model whose weights have the shapes
    ``kernel_shapes`` (others than 4-D convolution kernels ``(kh, kw, in, out)`` are
    ignored): YNNPACK's element-wise fusions back on, where cinn set the process flag,
    the program runs on a CPU and no spatial convolution has more than
    ``NARROW_INPUTS`` input channels; else ``None``."""
    if not _set_by_cinn or platform != "cpu":
        return None
    if any(len(s) == 4 and s[0] * s[1] > 1 and s[2] > NARROW_INPUTS for s in kernel_shapes):
        return None
    return {FLAG: COMPILED_FUSIONS}
