"""``cinn inpaint IMAGE (--mask MASK.png | --box x,y,w,h) -n 8 -o OUT``."""
import sys
import warnings
from pathlib import Path

from apps.common.sampling_args import (add_sampling_arguments, check_sampling_arguments,
                                       write_std_map)


def add_command(sub):
    p = sub.add_parser("inpaint", help="fill a hole in an image with N plausible completions",
                       description="Fill the missing part of IMAGE (white pixels of --mask, "
                       "or a --box) with N different completions. Known pixels are kept "
                       "exactly. Writes OUT/<name>_inpaint.png: masked input | completions.")
    p.add_argument("image", help="image file (any size) or skimage:NAME, e.g. "
                   "skimage:astronaut")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", help="mask image of the same size, white = missing")
    where.add_argument("--box", help="missing rectangle x,y,w,h in pixels")
    add_sampling_arguments(p, num_samples=8, temperature=0.8)
    p.set_defaults(func=run)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from apps.common.images import image_name, make_grid, read_image, write_image
    from apps.common.pretrained import load_model
    from apps.inpainting.infer import InpaintingNotice, inpaint, masked_view
    from apps.inpainting.masks import box_mask, parse_box, read_mask

    check_sampling_arguments(args)
    rgb = read_image(args.image, min_size=1)
    shape = rgb.shape[:2]
    if args.mask:
        mask = read_mask(args.mask, shape)
    else:
        mask = box_mask(shape, parse_box(args.box, shape))
    model = load_model("inpainting", args.weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InpaintingNotice)
        samples = inpaint(model, rgb, mask, n=args.num_samples, temperature=args.temperature,
                          seed=args.seed)
    for w in caught:
        print(f"cinn: note: {w.message}", file=sys.stderr)
    out = Path(args.out)
    stem = image_name(args.image)
    grid = write_image(out / f"{stem}_inpaint.png",
                       make_grid([[masked_view(rgb, mask)] + list(samples)]))
    print(f"wrote {grid}")
    write_std_map(args, out / f"{stem}_std.png", samples)
    if args.save_samples:
        for i, s in enumerate(samples):
            write_image(out / f"{stem}_sample{i}.png", s)
        print(f"wrote {len(samples)} samples to {out}/{stem}_sample*.png")
    return 0
