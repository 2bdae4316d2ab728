"""cinn: conditional invertible neural networks on Keras 3 (TensorFlow or JAX)."""
from cinn._xla_cpu import use_eigen_convolutions

use_eigen_convolutions()  # before Keras imports JAX (see cinn/_xla_cpu.py)

from cinn import blocks, conditioning, subnets  # noqa: E402
from cinn.errors import CinnError  # noqa: E402
from cinn.model import ConditionalINN  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ConditionalINN", "CinnError", "blocks", "conditioning", "subnets", "__version__"]
