"""The options every app's sampling command shares (``-n``, ``--temperature``, ...)."""


def add_sampling_arguments(parser, num_samples, temperature, temperature_help=None):
    """Add ``-n``, ``--temperature``, ``--seed``, ``-o``, ``--weights``,
    ``--save-samples`` and ``--std-map`` to an app's sampling command, and
    ``check_command`` as its ``check`` (what ``cinn`` runs before it imports Keras)."""
    parser.set_defaults(check=check_command)
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


def input_paths(args):
    """The input images of a sampling command (``IMAGE...`` or ``IMAGE``)."""
    paths = getattr(args, "images", None)
    if paths is None:
        paths = [args.image] if getattr(args, "image", None) is not None else []
    return list(paths)


def check_inputs(args):
    """Each input image of a sampling command read (``images.read_image``: a missing,
    corrupt or unreadable file is a one-line ``CinnError``) and checked against
    ``--max-megapixels`` (of the output, for ``--scale``); returns ``{path: (H, W)}``.
    A ``skimage:NAME`` input is only checked to name a picture scikit-image ships."""
    from cinn.apps.common.images import SKIMAGE_PICTURES, SKIMAGE_PREFIX, read_image
    from cinn.apps.common.outputs import check_pixels
    from cinn.errors import CinnError

    scale = int(getattr(args, "scale", None) or 1)
    limit = getattr(args, "max_megapixels", None)
    sizes = {}
    for path in input_paths(args):
        text = str(path)
        if text.startswith(SKIMAGE_PREFIX):
            if text[len(SKIMAGE_PREFIX):] not in SKIMAGE_PICTURES:
                raise CinnError(f"{text}: unknown scikit-image picture; choose one of "
                                f"{', '.join(SKIMAGE_PICTURES)}")
            continue
        hw = read_image(path, min_size=1).shape[:2]
        if min(hw) < 2:
            raise CinnError(f"{path}: image is {hw[1]}x{hw[0]} pixels; at least 2x2 is needed")
        if limit is not None:
            check_pixels(path, hw, limit, "the input" if scale != 1 else "image", scale)
        sizes[text] = hw
    return sizes


def check_command(args, more=None):
    """What a sampling command checks before ``cinn`` imports Keras, so that a
    usage error or a bad file answers in a fraction of a second: ``-n``,
    ``--temperature``, ``--seed``; the input images (``check_inputs``), then
    ``more(args, sizes)`` when given (a command's own inputs, e.g. a mask); then
    ``-o`` (made, and written to: ``outputs.check_out_dir``; after the inputs, so
    that bad input leaves no folder behind) and the ``--weights`` file. One-line
    ``CinnError``s. The command's ``run`` checks again what its Python callers need;
    this step only makes the answer fast."""
    from cinn.apps.common.outputs import check_out_dir
    from cinn.apps.common.pretrained import weights_path

    check_sampling_arguments(args, default_temperature=0.0)   # the defaults are valid
    sizes = check_inputs(args)
    if more is not None:
        more(args, sizes)
    check_out_dir(args.out)
    if getattr(args, "weights", None):
        weights_path(None, args.weights)                         # the file exists


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
