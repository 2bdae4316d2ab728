"""``cinn colorize IMAGE [IMAGE...] -n 8 --temperature 0.8 --seed 0 -o OUT``."""
from pathlib import Path

from apps.common.sampling_args import (add_sampling_arguments, check_sampling_arguments,
                                       write_std_map)


def add_command(subparsers):
    p = subparsers.add_parser(
        "colorize", help="N plausible colourings of grey (or colour) photos",
        description="Writes OUT/NAME_colorized.png per input: the grey input | N samples | "
        "the original (if the input had colour).")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (any size, colour or grey), or skimage:NAME for a "
                   "picture scikit-image ships (e.g. skimage:astronaut)")
    add_sampling_arguments(p, num_samples=8, temperature=0.8)
    p.set_defaults(func=run)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from apps.colorization.infer import colorize, grey_of
    from apps.common.images import image_name, is_greyscale, make_grid, read_image, write_image
    from apps.common.pretrained import load_model

    check_sampling_arguments(args)
    inputs = [(image_name(path), read_image(path)) for path in args.images]  # fail early

    model = load_model("colorization", args.weights)
    out = Path(args.out)
    for name, rgb in inputs:
        samples = colorize(model, rgb, n=args.num_samples, temperature=args.temperature,
                           seed=args.seed)
        row = [grey_of(rgb), *samples] + ([] if is_greyscale(rgb) else [rgb])
        path = write_image(out / f"{name}_colorized.png", make_grid([row]))
        print(path)
        write_std_map(args, out / f"{name}_std.png", samples)
        if args.save_samples:
            for k, sample in enumerate(samples):
                print(write_image(out / f"{name}_sample{k}.png", sample))
    return 0
