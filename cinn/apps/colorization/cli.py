"""``cinn colorize IMAGE [IMAGE...] -n 8 [--temperature 1.15 --local-temperature 0.5]
[--saturation LO HI --hue DEG] --seed 0 -o OUT`` (defaults: ``defaults.py``)."""
from cinn.apps.colorization.defaults import DEFAULT_LOCAL_TEMPERATURE, DEFAULT_TEMPERATURE
from cinn.apps.colorization.global_colour import add_arguments as add_colour_arguments
from cinn.apps.common.sampling_args import add_sampling_arguments, check_sampling_arguments

#: default pixel budget (``--max-megapixels``)
MAX_MEGAPIXELS = 12


def add_command(subparsers):
    p = subparsers.add_parser(
        "colorize", help="N plausible colourings of grey (or colour) photos",
        description="Writes OUT/NAME_colorized.png per input: the grey input | N samples | "
        "the original (if the input had colour).")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (any size, colour or grey), or skimage:NAME for a "
                   "picture scikit-image ships (e.g. skimage:astronaut)")
    add_sampling_arguments(
        p, num_samples=8, temperature=None,
        temperature_help=f"temperature of the flow's global latents (default "
        f"{DEFAULT_TEMPERATURE:g}); a flow without them (--weights .../model.keras): of "
        f"all its latents (default: --local-temperature)")
    add_colour_arguments(p)
    p.add_argument("--local-temperature", type=float, metavar="T",
                   help="temperature of the flow's local latents, all but the global ones "
                   f"(default {DEFAULT_LOCAL_TEMPERATURE:g}; a flow without global latents: "
                   "all of them, unless --temperature is given)")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS, metavar="MP",
                   help=f"largest image to colourise (default {MAX_MEGAPIXELS:g}; memory "
                   "grows with the image, not with -n)")
    p.set_defaults(func=run, check=check)


def check_local_temperature(value):
    """``--local-temperature`` in the range of ``--temperature`` (one-line error)."""
    from cinn.errors import CinnError
    from cinn.sampling import check_sampling

    if value is not None:
        try:
            check_sampling(1, value, None)
        except CinnError as err:
            raise CinnError(f"--local-temperature: {err}") from None


def check(args):
    """The sampling command's checks before Keras (``check_command``), and
    ``--local-temperature``."""
    from cinn.apps.common.sampling_args import check_command

    check_local_temperature(args.local_temperature)
    check_command(args)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from cinn.apps.colorization.global_colour import from_arguments
    from cinn.apps.colorization.infer import grey_of, iter_colorize
    from cinn.apps.common.images import image_name, is_greyscale, read_image, write_image
    from cinn.apps.common.outputs import (RowGrid, RunningStats, check_out_dir, check_pixels,
                                     distinct_names, write_std_map)
    from cinn.apps.common.pretrained import load_model
    from cinn.errors import CinnError

    n, _, seed = check_sampling_arguments(args, default_temperature=DEFAULT_TEMPERATURE)
    temperature = args.temperature       # None: the defaults, for the model (infer.py)
    saturation, hue = from_arguments(args)
    local_temperature = args.local_temperature
    check_local_temperature(local_temperature)
    images = [read_image(path) for path in args.images]  # fail early
    for path, rgb in zip(args.images, images):
        check_pixels(path, rgb.shape[:2], args.max_megapixels)
    out = check_out_dir(args.out)  # inputs first: a bad input leaves no folder behind
    names = distinct_names([image_name(path) for path in args.images])
    model = load_model("colorization", args.weights)
    for name, rgb in zip(names, images):
        colour = not is_greyscale(rgb)
        grid = RowGrid(out / f"{name}_colorized.png", rgb.shape[:2], n + 1 + colour)
        grid.add(grey_of(rgb))
        stats = RunningStats(squares=True) if args.std_map else None
        samples = iter_colorize(model, rgb, n, temperature, seed, saturation=saturation,
                                hue=hue, local_temperature=local_temperature)
        for k, sample in enumerate(samples):
            grid.add(sample)
            if stats:
                stats.add(sample)
            if args.save_samples:
                print(write_image(out / f"{name}_sample{k}.png", sample))
        if colour:
            grid.add(rgb)
        print(grid.close())
        if stats:
            write_std_map(args, out / f"{name}_std.png", stats)
    return 0
