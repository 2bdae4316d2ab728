import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests run tiny models mostly eagerly: on JAX every op is compiled for every new
# shape, and XLA's backend optimisations cost more than they save here (about 2.5x
# faster test runs). Set before JAX is imported; subprocesses inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
