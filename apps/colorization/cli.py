"""``cinn colorize IMAGE [IMAGE...] -n 8 --temperature 0.8 --seed 0 -o OUT``."""
from pathlib import Path


def add_command(subparsers):
    p = subparsers.add_parser(
        "colorize", help="N plausible colourings of grey (or colour) photos",
        description="Writes OUT/NAME_colorized.png per input: the grey input | N samples | "
        "the original (if the input had colour).")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (any size, colour or grey), or skimage:NAME for a "
                   "picture scikit-image ships (e.g. skimage:astronaut)")
    p.add_argument("-n", "--num-samples", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    p.add_argument("--weights", help="model file or training run folder (default: shipped)")
    p.add_argument("--save-samples", action="store_true",
                   help="also write every sample as OUT/NAME_sampleK.png")
    p.set_defaults(func=run)


def run(args):
    from cinn.errors import CinnError

    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    if not args.temperature >= 0:
        raise CinnError(f"--temperature must be >= 0, got {args.temperature}")
    from apps.common.images import image_name, is_greyscale, make_grid, read_image, write_image

    inputs = [(image_name(path), read_image(path)) for path in args.images]  # fail early

    from apps.colorization.infer import colorize, grey_of
    from apps.common.pretrained import load_model

    model = load_model("colorization", args.weights)
    out = Path(args.out)
    for name, rgb in inputs:
        samples = colorize(model, rgb, n=args.num_samples, temperature=args.temperature,
                           seed=args.seed)
        row = [grey_of(rgb), *samples] + ([] if is_greyscale(rgb) else [rgb])
        path = write_image(out / f"{name}_colorized.png", make_grid([row]))
        print(path)
        if args.save_samples:
            for k, sample in enumerate(samples):
                print(write_image(out / f"{name}_sample{k}.png", sample))
    return 0
