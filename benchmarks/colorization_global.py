"""The colorization flow with global latents, judged by its own samples (no draws).

    KERAS_BACKEND=tensorflow nice -n 10 python -m benchmarks.colorization_global evaluate \
        --weights cinn/apps/saved_models/colorization/model.keras --temperature 1 \
        --sweep 0.8 0.9 --out benchmarks/results/colorization_global.json
    python -m benchmarks.colorization_global picture --weights ... \
        --images ../shared/data/eval/kodak24/kodim05.png ... -o docs/images/colorization_global_samples.png
    python -m benchmarks.colorization_global upsampling
    python -m benchmarks.colorization_global bpd --weights ...

``evaluate``: per evaluation folder (default kodak24, set14, mcmaster18, bsd68; colour
images cropped to a multiple of 16), the posterior report of ``cinn evaluate
colorization`` (``cinn.apps.colorization.evaluate.evaluate_images``: N = 8 samples per
image, seed 0 + image index, no global colour draws, RGB 0-255) for the flow at
``--temperature`` and the ``--sweep`` temperatures, the L2 regressor and grey, plus a
"regressor + draws" row: the regressor's prediction recoloured by the old default
global colour draws (saturation 0.6-2.4, hue +-40 degrees, N = 8), the post-hoc trick
the new flow must beat with its own samples. Prints a Markdown table, writes JSON.

``picture``: grey input | 8 samples | ground truth, one row per image (PNG).

``bpd``: held-out bits/dim of ab at the flow's working size (photos shrunk as the
training's validation pictures; ``cinn evaluate``'s bits/dim of such a flow shrink
the dequantised full-size ab instead, which averages the noise away).

``upsampling``: the error of bringing the ground truth's own ab, shrunk to 64x64, back
to full size (bicubic, and bicubic + the guided filter of
``cinn.apps.colorization.guided``): what working at 64x64 costs at most.
"""
import argparse
import json
from pathlib import Path

import numpy as np

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval"
SETS = ("kodak24", "set14", "mcmaster18", "bsd68")
#: the post-hoc global colour draws that were the app's defaults
OLD_SATURATION, OLD_HUE = (0.6, 2.4), 40.0
N = 8


def evaluate(args):
    from cinn.apps.colorization.data import load_colour_images
    from cinn.apps.colorization.evaluate import (colourfulness, colourings, condition,
                                                 crop_to_multiple, evaluate_images,
                                                 regressor_ab, with_draws)
    from cinn.apps.common.posterior_report import flow_key
    from cinn.apps.common.pretrained import load_model

    model = load_model("colorization", args.weights)
    regressor = load_model("colorization", variant="l2")
    from cinn.apps.colorization import evaluate as ev
    from cinn.apps.colorization.infer import sample_ab

    def sample(model, c, n, t, seed, local_temperature=None, **kwargs):
        # every row: the local latents at --local-temperature, or at the row's T when
        # it is not given (all latents at T, as these tables were measured)
        local = t if args.local_temperature is None else args.local_temperature
        return sample_ab(model, c, n, t, seed, local_temperature=local, **kwargs)

    ev.sample_ab = sample
    results = {}
    for name in args.sets:
        images = load_colour_images(args.eval / name, limit=args.limit)
        images = [crop_to_multiple(im, 16) for im in images if min(im.shape[:2]) >= 16]
        report, extras = evaluate_images(model, images, N, args.temperature, 0, regressor,
                                         sweep=args.sweep, saturation=None, hue=0.0)
        colour = []
        for i, rgb in enumerate(images):
            c, _ = condition(rgb)
            ab = with_draws(np.repeat(regressor_ab(regressor, c), N, axis=0), i,
                            OLD_SATURATION, OLD_HUE)
            samples = colourings(c, ab)
            report.add("l2_draws", "L2 regressor + draws", samples, rgb)
            colour.append(float(np.mean([colourfulness(s) for s in samples])))
        extras["colourfulness"]["l2_draws"] = float(np.mean(colour))
        rows = {}
        for key, method in report.methods.items():
            summary = method.summary()
            rows[key] = {"name": method.name,
                         **{k: [round(float(v), 4) for v in ci] for k, ci in summary.items()},
                         "colourfulness": round(extras["colourfulness"][key], 2)}
        results[name] = {"images": len(images), "gt_colourfulness":
                         round(extras["gt_colourfulness"], 2),
                         "bpd": [round(float(v), 4) for v in extras["bpd"]], "rows": rows,
                         "flow": flow_key(args.temperature)}
        print(table(name, results[name]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"weights": str(args.weights),
                                              "temperature": args.temperature,
                                              "local_temperature": args.local_temperature,
                                              "n": N, "sets": results}, indent=1))
    return results


def cell(ci, fmt="{:.2f}"):
    return "—" if ci is None else f"{fmt.format(ci[0])} [{fmt.format(ci[1])}, {fmt.format(ci[2])}]"


def table(name, res):
    gt = res["gt_colourfulness"]
    lines = [f"\n{name}: {res['images']} images, N = {N}, bits/dim {cell(res['bpd'], '{:.3f}')}, "
             f"ground-truth colourfulness {gt:.1f}",
             "| method | CRPS | range coverage | best-of-8 PSNR | single PSNR | "
             "colourfulness (% of GT) |", "| --- | --- | --- | --- | --- | --- |"]
    for row in res["rows"].values():
        lines.append(f"| {row['name']} | {cell(row.get('crps'))} | "
                     f"{cell(row.get('range_coverage'), '{:.3f}')} | "
                     f"{cell(row.get('psnr_best'))} | {cell(row.get('psnr_single'))} | "
                     f"{row['colourfulness']:.1f} ({100 * row['colourfulness'] / gt:.0f} %) |")
    return "\n".join(lines)


def picture(args):
    import cv2

    from cinn.apps.colorization.infer import colorize, grey_of
    from cinn.apps.common.images import read_image, write_image
    from cinn.apps.common.pretrained import load_model

    model = load_model("colorization", args.weights)
    rows = []
    for path in args.images:
        rgb = read_image(path)
        h = args.height
        w = round(rgb.shape[1] * h / rgb.shape[0])
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        samples = colorize(model, rgb, n=N, temperature=args.temperature, seed=args.seed,
                           saturation=None, hue=0, local_temperature=args.temperature
                           if args.local_temperature is None else args.local_temperature)
        gap = np.full((h, 4, 3), 255, np.uint8)
        tiles = [grey_of(rgb)] + list(samples) + [rgb]
        rows.append(np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    print(write_image(args.out, np.concatenate(rows, axis=0)[:-4]))


def upsampling(args):
    import cv2
    from keras import ops

    from cinn.apps.colorization.color import split_lab
    from cinn.apps.colorization.data import load_colour_images
    from cinn.apps.colorization.guided import guided_upsample

    for name in args.sets:
        errors = {"bicubic": [], "guided": []}
        for rgb in load_colour_images(args.eval / name):
            c, x = (np.asarray(ops.convert_to_numpy(t), "float32")[0]
                    for t in split_lab(rgb[None]))
            h, w = x.shape[:2]
            small = cv2.resize(x, (64, 64), interpolation=cv2.INTER_AREA)
            errors["bicubic"].append(np.mean(np.abs(
                cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) - x)))
            errors["guided"].append(np.mean(np.abs(guided_upsample(small, c) - x)))
        print(f"{name}: mean |ab error| in Lab units: " + ", ".join(
            f"{k} {100 * np.mean(v):.2f}" for k, v in errors.items()))


def bpd(args):
    """Held-out bits/dim of ab at the working size: each photo resized (area) to
    ``size`` x ``size`` as uint8 RGB, as the training's validation pictures, one bin of
    uniform dequantisation noise (seed = image index)."""
    from cinn.apps.colorization.data import load_colour_images, to_pair, whole_pictures
    from cinn.apps.colorization.evaluate import bits_per_dim
    from cinn.apps.colorization.infer import working_size
    from cinn.apps.common.pretrained import load_model
    from cinn.diagnostics import bootstrap_ci

    model = load_model("colorization", args.weights)
    size = working_size(model) or 64
    for name in args.sets:
        x, c = to_pair(whole_pictures(load_colour_images(args.eval / name), size))
        values = np.asarray([bits_per_dim(model, x[i:i + 1], c[i:i + 1], i)
                             for i in range(len(x))])
        print(f"{name}: {len(x)} photos at {size}x{size}, bits/dim of ab "
              f"{cell(bootstrap_ci(values), '{:.3f}')}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--weights", default=None)
    e.add_argument("--temperature", type=float, default=1.0)
    e.add_argument("--sweep", type=float, nargs="*", default=[])
    e.add_argument("--local-temperature", type=float,
                   help="the latents outside the global section at this temperature")
    e.add_argument("--sets", nargs="+", default=list(SETS))
    e.add_argument("--eval", type=Path, default=EVAL)
    e.add_argument("--limit", type=int)
    e.add_argument("--out")
    q = sub.add_parser("picture")
    q.add_argument("--weights", default=None)
    q.add_argument("--images", nargs="+", required=True)
    q.add_argument("--temperature", type=float, default=1.0)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--local-temperature", type=float)
    q.add_argument("--height", type=int, default=160)
    q.add_argument("-o", "--out", required=True)
    u = sub.add_parser("upsampling")
    u.add_argument("--sets", nargs="+", default=["kodak24", "set14", "mcmaster18"])
    u.add_argument("--eval", type=Path, default=EVAL)
    b = sub.add_parser("bpd")
    b.add_argument("--weights", default=None)
    b.add_argument("--sets", nargs="+", default=list(SETS))
    b.add_argument("--eval", type=Path, default=EVAL)
    args = p.parse_args()
    {"evaluate": evaluate, "picture": picture, "upsampling": upsampling, "bpd": bpd}[
        args.cmd](args)


if __name__ == "__main__":
    main()
