import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests run tiny models mostly eagerly: on JAX every op is compiled for every new
# shape (25-45 ms each on this CPU, most of a JAX test's time), and XLA's backend
# optimisations cost more than they save here (about 2.5x faster test runs); XLA's
# older element-wise emitters compile such one-op programs about 1.7x faster than its
# fusion emitters (15 % off tests/test_strips.py + test_global_colour.py). Set before
# JAX is imported; subprocesses inherit it.


def _test_xla_flags():
    from importlib.metadata import PackageNotFoundError, version

    flags = "--xla_backend_optimization_level=0"
    try:
        major, minor = (int(p) for p in version("jaxlib").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return flags
    if (0, 6) <= (major, minor) < (0, 11):  # XLA aborts on a flag it does not know
        flags += " --xla_cpu_use_fusion_emitters=false"
    return flags


os.environ.setdefault("XLA_FLAGS", _test_xla_flags())
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


#: for tests that run an example script in a subprocess: the scripts have no
#: backend-specific code (the library functions they call are tested in-process on both
#: backends), so they run once, in the TensorFlow run, which is the shorter of the two
#: runs that `tests/run.sh` starts side by side (the JAX run sets the suite's time)
examples_once = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="example scripts run once, in the TensorFlow run of tests/run.sh")
