"""``cinn inpaint IMAGE (--mask MASK.png | --box x,y,w,h) -n 8 -o OUT``."""
import sys
import warnings

from cinn.apps.common.sampling_args import add_sampling_arguments, check_sampling_arguments
from cinn.apps.inpainting import DEFAULT_TEMPERATURE

#: default pixel budget (``--max-megapixels``)
MAX_MEGAPIXELS = 8


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
    add_sampling_arguments(p, num_samples=8, temperature=DEFAULT_TEMPERATURE)
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS, metavar="MP",
                   help=f"largest image to inpaint (default {MAX_MEGAPIXELS:g}; memory "
                   "grows with the image, not with -n)")
    p.set_defaults(func=run, check=check)


def check(args):
    """``cinn inpaint``'s checks before Keras is imported: the sampling command's
    (``check_command``: options, the image, ``-o``) and the mask or box."""
    from cinn.apps.common.sampling_args import check_command

    check_command(args, more=_check_hole)


def _check_hole(args, sizes):
    from cinn.apps.inpainting.masks import parse_box, read_mask

    shape = sizes.get(str(args.image))
    if args.mask:
        read_mask(args.mask, shape)
    else:
        parse_box(args.box, shape)


def run(args):
    # here, not at the top: cinn imports Keras, which `cinn --help` should not wait for
    from cinn.apps.common.images import image_name, read_image, write_image
    from cinn.apps.common.outputs import (RowGrid, RunningStats, check_out_dir, check_pixels,
                                     write_std_map)
    from cinn.apps.common.pretrained import load_model
    from cinn.apps.inpainting.infer import InpaintingNotice, iter_inpaint, masked_view
    from cinn.apps.inpainting.masks import box_mask, fit_box, parse_box, read_mask

    n, temperature, seed = check_sampling_arguments(args)
    out = check_out_dir(args.out)
    rgb = read_image(args.image, min_size=1)
    shape = rgb.shape[:2]
    if args.mask:
        mask = read_mask(args.mask, shape)
    else:
        box, note = fit_box(parse_box(args.box, shape), shape)
        if note:
            print(f"cinn: note: {note}", file=sys.stderr)
        mask = box_mask(shape, box)
    check_pixels(args.image, shape, args.max_megapixels)
    model = load_model("inpainting", args.weights)
    stem = image_name(args.image)
    grid = RowGrid(out / f"{stem}_inpaint.png", shape, n + 1)
    grid.add(masked_view(rgb, mask))
    stats = RunningStats(squares=True) if args.std_map else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InpaintingNotice)
        for i, sample in enumerate(iter_inpaint(model, rgb, mask, n, temperature, seed)):
            grid.add(sample)
            if stats:
                stats.add(sample)
            if args.save_samples:
                write_image(out / f"{stem}_sample{i}.png", sample)
    for w in caught:
        print(f"cinn: note: {w.message}", file=sys.stderr)
    print(f"wrote {grid.close()}")
    if stats:
        write_std_map(args, out / f"{stem}_std.png", stats)
    if args.save_samples:
        print(f"wrote {n} samples to {out}/{stem}_sample*.png")
    return 0
