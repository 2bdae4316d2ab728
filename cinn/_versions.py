"""Version strings as ``(major, minor)``, for the version guards of ``cinn._keras_compat``
and ``cinn._xla_cpu`` (no Keras or JAX import here: ``_xla_cpu`` runs before them)."""


def major_minor(version):
    """``(major, minor)`` of a version string: ``"3.15.1"`` -> ``(3, 15)``, ``"0.10rc1"`` ->
    ``(0, 10)``."""
    parts = version.split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def in_range(version, tested):
    """Whether ``(major, minor)`` ``version`` lies in ``tested = (from, to)``, from
    inclusive, to exclusive."""
    lo, hi = tested
    return lo <= version < hi
