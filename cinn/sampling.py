"""The sampling arguments every sampler takes (``n``, ``temperature``, ``seed``),
checked in one place: ``ConditionalINN.sample``, the apps' Python entry points and
command lines all call ``check_sampling``; the SavedModel signatures check the
same ranges in the graph (``cinn.export.check_sampling_args``).

Seeds: sample ``k`` (counting ``n`` samples per condition, condition after
condition) is drawn with the two-word stateless seed ``[seed, k]``, so a sample
does not depend on how many samples are drawn at once. TensorFlow reduces seed
words modulo ``2**31 - 2`` (Keras' ``stateless_*`` seed cast), so larger seeds
would repeat smaller ones: ``MAX_SEED`` is the largest seed that does not.
"""
import math
import numbers

from cinn.errors import CinnError

MAX_SAMPLES = 10_000
MAX_TEMPERATURE = 10.0
MAX_SEED = 2 ** 31 - 3


def check_sampling(n=1, temperature=1.0, seed=None):
    """``(n, temperature, seed)`` as ``(int, float, int or None)``, or ``CinnError``
    with a one-line reason: ``n`` from 1 to ``MAX_SAMPLES``, ``temperature`` a
    finite number from 0 to ``MAX_TEMPERATURE``, ``seed`` ``None`` or an integer
    from 0 to ``MAX_SEED``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_SAMPLES:
        raise CinnError(f"the number of samples (-n) must be an integer from 1 to "
                        f"{MAX_SAMPLES}, got {n!r}")
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(temperature, bool) or not (math.isfinite(t) and 0.0 <= t <= MAX_TEMPERATURE):
        raise CinnError(f"the temperature must be a finite number from 0 to "
                        f"{MAX_TEMPERATURE:g}, got {temperature!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed <= MAX_SEED):
        raise CinnError(f"the seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return int(n), t, None if seed is None else int(seed)
