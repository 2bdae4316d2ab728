"""cinn: conditional invertible neural networks on Keras 3 (TensorFlow or JAX)."""
from cinn import blocks
from cinn.errors import CinnError
from cinn.model import ConditionalINN

__version__ = "0.1.0"
__all__ = ["ConditionalINN", "CinnError", "blocks", "__version__"]
