"""``cinn train APP``: the same training command for every app."""
import importlib
import json
import time
from pathlib import Path

from apps.common.config import load_config


def apply_overrides(cfg, args):
    """Command-line options override the config file."""
    data, train = cfg["data"], cfg["train"]
    for key, value in (("batch_size", args.batch_size), ("steps_per_epoch", args.steps)):
        if value is not None:
            data[key] = value
    for key, value in (("epochs", args.epochs), ("learning_rate", args.lr)):
        if value is not None:
            train[key] = value
    if getattr(args, "scale", None) is not None:
        cfg["model"]["scale"] = args.scale
    if args.seed is not None:
        cfg["seed"] = args.seed
    return cfg


def run(args):
    import keras

    from cinn.training import train

    task = importlib.import_module(f"apps.{args.app}.task")
    cfg = apply_overrides(load_config(args.app, args.config), args)
    seed = int(cfg.get("seed", 0))
    keras.utils.set_random_seed(seed)
    out = Path(args.out or f"runs/{args.app}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    print(f"[cinn] loading data from {args.data}", flush=True)
    train_ds, val_ds = task.make_datasets(args.data, cfg, seed=seed)
    model = task.build_model(cfg["model"])
    print(f"[cinn] {args.app}: {model.count_params():,} parameters, backend "
          f"{keras.backend.backend()}, writing to {out}", flush=True)
    tcfg = cfg["train"]
    start = time.time()
    history = train(model, train_ds, val_ds, epochs=int(tcfg.get("epochs", 10)),
                    learning_rate=float(tcfg.get("learning_rate", 1e-3)),
                    clipnorm=tcfg.get("clipnorm"), out_dir=out,
                    checkpoint_every=tcfg.get("checkpoint_every"), verbose=args.verbose)
    model.save(out / "model.keras")
    summary = {"seconds": round(time.time() - start, 1),
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    (out / "history.json").write_text(json.dumps(summary, indent=2))
    print(f"[cinn] done in {summary['seconds']} s; model saved to {out / 'model.keras'}")
    return 0
