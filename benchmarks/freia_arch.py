"""The same flow in FrEIA (PyTorch), built from a cinn ``ConditionalINN``'s level specs.

Block by block:

| cinn | FrEIA |
| --- | --- |
| ``HaarDownsample`` | ``HaarDownsampling`` |
| ``Squeeze`` | ``IRevNetDownsampling`` |
| ``ActNorm`` | ``ActNorm`` |
| ``InvertibleConv1x1`` (learned, LU) | ``Fixed1x1Conv`` (FrEIA has no learned 1x1 conv; same matmul cost) |
| ``RandomPermutation`` | ``PermuteRandom`` |
| ``AffineInjector`` | ``ConditionalAffineTransform`` |
| ``AffineCoupling`` | ``AffineCouplingOneSided`` (atan clamp) |
| ``Split(prior=True)`` | ``AffineCouplingOneSided`` on (kept, factored) + ``Split`` |
| ``Split()`` | ``Split`` |

Subnets: conv(k=3) + ReLU, conv(k=1) + ReLU (``depth`` layers of ``hidden``), then a
zero-initialised conv(k=3) to the affine parameters, as ``cinn.subnets``.
Conditions: one feature tensor per level, fed through ``ConditionNode``s.
"""
import numpy as np


def _subnet_factory(hidden, depth, kernel_size=3):
    import torch.nn as nn

    def make(c_in, c_out):
        layers, ch = [], c_in
        for i in range(depth):
            k = kernel_size if i == 0 else 1
            layers += [nn.Conv2d(ch, hidden, k, padding=k // 2), nn.ReLU()]
            ch = hidden
        out = nn.Conv2d(ch, c_out, 3, padding=1)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        return nn.Sequential(*layers, out)

    return make


def build_freia(levels, x_shape, cond_channels, clamp=2.0, seed=0):
    """A FrEIA ``GraphINN`` for ``levels`` (cinn level dicts) on NCHW input of
    ``x_shape`` = (H, W, C) and per-level condition channels ``cond_channels``
    (None where a level takes no condition)."""
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm
    import torch

    rng = np.random.default_rng(seed)
    h, w, ch = x_shape
    inp = Ff.InputNode(ch, h, w, name="x")
    node, nodes, outputs, conds = inp, [inp], [], []
    for i, lv in enumerate(levels):
        if lv.get("downsample") == "haar":
            node = Ff.Node(node, Fm.HaarDownsampling, {}, name=f"l{i}_haar")
            nodes.append(node)
            h, w, ch = h // 2, w // 2, ch * 4
        elif lv.get("downsample") == "squeeze":
            node = Ff.Node(node, Fm.IRevNetDownsampling, {}, name=f"l{i}_squeeze")
            nodes.append(node)
            h, w, ch = h // 2, w // 2, ch * 4
        cond = None
        if cond_channels[i] is not None:
            cond = Ff.ConditionNode(cond_channels[i], h, w, name=f"c{i}")
            conds.append(cond)
        sub = lv.get("subnet") or {}
        make = _subnet_factory(sub.get("hidden", 64), sub.get("depth", 2),
                               sub.get("kernel_size", 3))
        kw = {"subnet_constructor": make, "clamp": clamp}

        def add(module, args, name, conditioned=False):
            nonlocal node
            node = Ff.Node(node, module, args, conditions=cond if conditioned and cond else None,
                           name=name)
            nodes.append(node)

        def conv1x1(name):
            q, _ = np.linalg.qr(rng.standard_normal((ch, ch)))
            add(Fm.Fixed1x1Conv, {"M": torch.tensor(q, dtype=torch.float32)}, name)

        if lv.get("transition"):
            add(Fm.ActNorm, {}, f"l{i}_trans_actnorm")
            conv1x1(f"l{i}_trans_conv")
        for k in range(int(lv.get("blocks", 4))):
            if lv.get("actnorm", True):
                add(Fm.ActNorm, {}, f"l{i}_s{k}_actnorm")
            perm = lv.get("permute", "conv1x1")
            if perm == "conv1x1":
                conv1x1(f"l{i}_s{k}_conv")
            elif perm == "random":
                add(Fm.PermuteRandom, {"seed": int(rng.integers(1 << 30))}, f"l{i}_s{k}_perm")
            if lv.get("injector"):
                add(Fm.ConditionalAffineTransform, dict(kw), f"l{i}_s{k}_inj", True)
            add(Fm.AffineCouplingOneSided, dict(kw), f"l{i}_s{k}_coupling", True)
        if lv.get("split"):
            keep = ch - ch // 2
            if lv["split"] == "prior":
                add(Fm.AffineCouplingOneSided, {**kw, "split_len": keep}, f"l{i}_prior", True)
            split = Ff.Node(node, Fm.Split, {"section_sizes": [keep, ch - keep], "dim": 0},
                            name=f"l{i}_split")
            nodes.append(split)
            outputs.append(Ff.OutputNode(split.out1, name=f"z{i}"))
            node, ch = split.out0, keep
    outputs.append(Ff.OutputNode(node, name="z_final"))
    return Ff.GraphINN(nodes + conds + outputs, verbose=False)
