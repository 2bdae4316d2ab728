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


def check_sampling_arguments(args):
    """One-line errors for values no app can use."""
    from cinn.errors import CinnError

    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    if args.temperature is not None and not args.temperature >= 0:
        raise CinnError(f"--temperature must be >= 0, got {args.temperature}")


def write_std_map(args, path, samples):
    """With ``--std-map``: write the uncertainty map of ``samples`` (n, H, W, 3),
    uint8 or float in 0-255, to ``path`` and print the path; else do nothing."""
    if not getattr(args, "std_map", False):
        return None
    from apps.common.images import write_image
    from apps.common.uncertainty import uncertainty_image

    path = write_image(path, uncertainty_image(samples))
    print(path)
    return path
