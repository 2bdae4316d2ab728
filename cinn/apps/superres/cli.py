"""``cinn superres IMAGE [IMAGE...]``: many super-resolved versions of each image."""
from cinn.apps.common.sampling_args import add_sampling_arguments, check_sampling_arguments
from cinn.apps.superres import DEFAULT_TEMPERATURE

SCALES = (4, 8)
#: default pixel budget of the output (``--max-megapixels``)
MAX_MEGAPIXELS = 8


def add_command(sub):
    p = sub.add_parser("superres", help="super-resolve images (4x or 8x): several sharp "
                       "samples per image, each consistent with the input")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="low-resolution image file(s)")
    p.add_argument("--scale", type=int, choices=SCALES, default=4)
    add_sampling_arguments(p, num_samples=4, temperature=None, temperature_help=(
        f"sampling temperature (default {DEFAULT_TEMPERATURE:g}: the range of N samples "
        "covers the truth as a calibrated posterior's would; 0 gives the mode-like output)"))
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS, metavar="MP",
                   help=f"largest output image (scale x the input), in megapixels (default "
                   f"{MAX_MEGAPIXELS:g}; memory grows with the image, not with -n)")
    p.set_defaults(func=run)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from cinn.apps.common.images import image_name, read_image, write_image
    from cinn.apps.common.outputs import (RowGrid, RunningStats, check_out_dir, check_pixels,
                                     distinct_names, write_std_map)
    from cinn.apps.superres import infer
    from cinn.errors import CinnError

    n, temperature, seed = check_sampling_arguments(args, DEFAULT_TEMPERATURE)
    out = check_out_dir(args.out)
    lrs = [read_image(p, min_size=1) for p in args.images]
    for path, lr in zip(args.images, lrs):
        if min(lr.shape[:2]) < 2:
            raise CinnError(f"{path}: image is {lr.shape[1]}x{lr.shape[0]} pixels; "
                            "super-resolution needs at least 2x2")
        check_pixels(path, lr.shape[:2], args.max_megapixels, "the input", args.scale)
    names = distinct_names([image_name(p) for p in args.images])
    model = infer.load(args.weights, args.scale)
    s = args.scale
    for path, name, lr in zip(args.images, names, lrs):
        hw = (lr.shape[0] * s, lr.shape[1] * s)
        stem = f"{name}_x{s}"
        grid = RowGrid(out / f"{stem}_grid.png", hw, n + 2)
        grid.add(infer.bicubic(lr, s))
        stats = RunningStats(squares=args.std_map)
        for i, x in enumerate(infer.iter_upscale_float(model, lr, n, temperature, seed)):
            stats.add(x)
            sample = infer.to_uint8(x)
            grid.add(sample)
            if args.save_samples:
                write_image(out / f"{stem}_sample{i}.png", sample)
        mean = infer.to_uint8(stats.mean())
        grid.add(mean)
        grid = grid.close()
        print(f"{path}: {lr.shape[1]}x{lr.shape[0]} -> {hw[1]}x{hw[0]}, "
              f"{n} samples at temperature {temperature:g}; grid "
              f"(bicubic | samples | mean) in {grid}")
        write_std_map(args, out / f"{stem}_std.png", stats)
        if args.save_samples:
            write_image(out / f"{stem}_mean.png", mean)
    return 0
