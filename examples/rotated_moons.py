"""The smallest complete use of the library: a conditional density in 2-D.

x is a point of the two-moons set turned by an angle; the condition c = (cos, sin) of
that angle. One cINN learns p(x | c) for every angle at once, by maximum likelihood:

    python examples/rotated_moons.py -o out/          # about 40 s on 2 CPU cores

Writes ``out/rotated_moons.png``: for four angles, data (grey) and the model's samples
for that condition (orange), and prints the held-out NLL against a standard normal's.
"""
import argparse
import math
from pathlib import Path

import numpy as np

import cinn  # before Keras: cinn sets the backend's CPU flags


def moons(n, rng, angle=None):
    """``n`` points of two noisy moons, each turned by its own angle (uniform in [0, 2pi),
    or ``angle``), and the conditions ``(cos, sin)`` of those angles, float32."""
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    pts = np.where(upper[:, None], np.stack([np.cos(t), np.sin(t)], 1),
                   np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    pts = pts - [0.5, 0.25] + 0.05 * rng.standard_normal((n, 2))
    ang = rng.uniform(0, 2 * np.pi, n) if angle is None else np.full(n, float(angle))
    rot = np.stack([np.stack([np.cos(ang), -np.sin(ang)], -1),
                    np.stack([np.sin(ang), np.cos(ang)], -1)], 1)
    x = np.einsum("nij,nj->ni", rot, pts).astype("float32")
    c = np.stack([np.cos(ang), np.sin(ang)], 1).astype("float32")
    return x, c


def build():
    """Six affine couplings with dense s/t subnets fed the condition, a fixed random
    permutation before each."""
    return cinn.ConditionalINN((2,), (2,), [{"blocks": 6, "permute": "random",
                                             "subnet": {"type": "dense", "hidden": 64}}],
                               seed=0)


def train(epochs=30, n=6000, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    x, c = moons(n, np.random.default_rng(seed))
    model = build()
    model.initialize(x[:512], c[:512])                 # ActNorm from the data
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit((x, c), batch_size=200, epochs=epochs, verbose=0)
    return model


def main(argv=None):
    import cv2
    import keras

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("-o", "--out", default="out")
    args = p.parse_args(argv)
    model = train(args.epochs)
    x, c = moons(2000, np.random.default_rng(1))
    nll = -keras.ops.convert_to_numpy(model.log_prob(x, c)).mean()
    normal = (0.5 * (x ** 2).sum(1) + math.log(2 * math.pi)).mean()
    print(f"held-out NLL {nll:.3f} nats (a standard normal: {normal:.3f})")

    panels = []
    for k, angle in enumerate(np.radians([0, 45, 90, 135])):
        data, cond = moons(1000, np.random.default_rng(2 + k), angle)
        samples = keras.ops.convert_to_numpy(model.sample(cond[:1], n=1000, seed=k))[0]
        panel = np.full((240, 240, 3), 255, np.uint8)
        for pts, colour in ((data, (170, 170, 170)), (samples, (0, 120, 255))):  # BGR
            for u, v in np.clip(np.rint(120 + 60 * pts * [1, -1]), 0, 239).astype(int):
                cv2.circle(panel, (int(u), int(v)), 1, colour, -1)
        cv2.putText(panel, f"c: {math.degrees(angle):.0f} deg", (8, 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.pad(panel, ((0, 0), (0, 6), (0, 0)), constant_values=255))
    out = Path(args.out) / "rotated_moons.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(panels, 1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
