"""cinn: conditional invertible neural networks on Keras 3 (TensorFlow or JAX)."""
from cinn import blocks, conditioning, subnets
from cinn.errors import CinnError
from cinn.model import ConditionalINN

__version__ = "0.1.0"
__all__ = ["ConditionalINN", "CinnError", "blocks", "conditioning", "subnets", "__version__"]
