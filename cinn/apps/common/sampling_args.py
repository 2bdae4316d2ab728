"""The options every app's sampling command shares (``-n``, ``--temperature``, ...)."""


def add_sampling_arguments(parser, num_samples, temperature, temperature_help=None):
    """Add ``-n``, ``--temperature``, ``--seed``, ``-o``, ``--weights``,
    ``--save-samples`` and ``--std-map`` to an app's sampling command."""
    parser.add_argument("-n", "--num-samples", type=int, default=num_samples)
    parser.add_argument("--temperature", type=float, default=temperature,
                        help=temperature_help or f"sampling temperature (default {temperature})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    parser.add_argument("--weights", help="model file or training run folder (default: shipped)")
    parser.add_argument("--save-samples", action="store_true",
                        help="also write every sample as its own PNG")
    parser.add_argument("--std-map", action="store_true",
                        help="also write NAME_std.png: the per-pixel standard deviation "
                        "across the N samples as a heat map (where the model is unsure)")


def check_sampling_arguments(args, default_temperature=None):
    """``(n, temperature, seed)`` checked by ``cinn.sampling.check_sampling`` (the one
    place every app and the library check them); one-line errors naming the option.
    ``default_temperature`` stands in for ``--temperature`` when it was not given."""
    from cinn.errors import CinnError
    from cinn.sampling import check_sampling

    t = default_temperature if args.temperature is None else args.temperature
    try:
        return check_sampling(args.num_samples, t, args.seed)
    except CinnError as err:
        option = next(o for k, o in (("samples", "-n"), ("temperature", "--temperature"),
                                     ("seed", "--seed")) if k in str(err))
        raise CinnError(f"{option}: {err}") from None


def curve_temperatures(args, default=()):
    """The temperatures of ``cinn evaluate``'s ``--temperatures`` (``default`` when the
    option was not given; given without values: none), each checked to be >= 0."""
    from cinn.errors import CinnError

    given = getattr(args, "temperatures", None)
    temperatures = list(default if given is None else given)
    if any(not t >= 0 for t in temperatures):
        raise CinnError(f"--temperatures must be >= 0, got {temperatures}")
    return temperatures


def write_std_map(args, path, samples):
    """With ``--std-map``: write the uncertainty map of ``samples`` (n, H, W, 3),
    uint8 or float in 0-255, to ``path`` and print the path; else do nothing."""
    if not getattr(args, "std_map", False):
        return None
    from cinn.apps.common.images import write_image
    from cinn.apps.common.uncertainty import uncertainty_image

    path = write_image(path, uncertainty_image(samples))
    print(path)
    return path
