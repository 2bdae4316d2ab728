"""``cinn superres IMAGE [IMAGE...]``: many super-resolved versions of each image."""
from pathlib import Path

from apps.common.sampling_args import (add_sampling_arguments, check_sampling_arguments,
                                       write_std_map)

SCALES = (4, 8)


def add_command(sub):
    p = sub.add_parser("superres", help="super-resolve images (4x or 8x): several sharp "
                       "samples per image, each consistent with the input")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="low-resolution image file(s)")
    p.add_argument("--scale", type=int, choices=SCALES, default=4)
    add_sampling_arguments(p, num_samples=4, temperature=None, temperature_help=(
        "sampling temperature (default 0.5; 0 gives the mode-like output)"))
    p.set_defaults(func=run)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from apps.common.images import image_name, make_grid, read_image, write_image
    from apps.superres import infer
    from cinn.errors import CinnError

    check_sampling_arguments(args)
    temperature = infer.DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    lrs = [(p, read_image(p, min_size=1)) for p in args.images]
    for path, lr in lrs:
        if min(lr.shape[:2]) < 2:
            raise CinnError(f"{path}: image is {lr.shape[1]}x{lr.shape[0]} pixels; "
                            "super-resolution needs at least 2x2")
    model = infer.load(args.weights, args.scale)
    out = Path(args.out)
    for path, lr in lrs:
        samples = infer.upscale_float(model, lr, args.num_samples, temperature, args.seed)
        mean = infer.to_uint8(samples.mean(axis=0))
        samples = infer.to_uint8(samples)
        row = [infer.bicubic(lr, args.scale)] + list(samples) + [mean]
        stem = f"{image_name(path)}_x{args.scale}"
        grid = write_image(out / f"{stem}_grid.png", make_grid([row]))
        print(f"{path}: {lr.shape[1]}x{lr.shape[0]} -> {samples.shape[2]}x{samples.shape[1]}, "
              f"{len(samples)} samples at temperature {temperature:g}; grid "
              f"(bicubic | samples | mean) in {grid}")
        write_std_map(args, out / f"{stem}_std.png", samples)
        if args.save_samples:
            for i, s in enumerate(samples):
                write_image(out / f"{stem}_sample{i}.png", s)
            write_image(out / f"{stem}_mean.png", mean)
    return 0
