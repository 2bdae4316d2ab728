"""The options every app's sampling command shares (``-n``, ``--temperature``, ...)."""


def add_sampling_arguments(parser, num_samples, temperature, temperature_help=None):
    """Add ``-n``, ``--temperature``, ``--seed``, ``-o``, ``--weights`` and
    ``--save-samples`` to an app's sampling command."""
    parser.add_argument("-n", "--num-samples", type=int, default=num_samples)
    parser.add_argument("--temperature", type=float, default=temperature,
                        help=temperature_help or f"sampling temperature (default {temperature})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    parser.add_argument("--weights", help="model file or training run folder (default: shipped)")
    parser.add_argument("--save-samples", action="store_true",
                        help="also write every sample as its own PNG")


def check_sampling_arguments(args):
    """One-line errors for values no app can use."""
    from cinn.errors import CinnError

    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    if args.temperature is not None and not args.temperature >= 0:
        raise CinnError(f"--temperature must be >= 0, got {args.temperature}")
