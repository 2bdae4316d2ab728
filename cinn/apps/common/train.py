"""``cinn train APP``: the same training command for every app."""
import importlib
import json
import sys
import time
from functools import partial
from pathlib import Path

from cinn.apps.common.config import load_config


#: ``cinn train`` options that must be positive: (option, config section, key)
POSITIVE_OVERRIDES = (("batch_size", "data", "batch_size"), ("steps", "data", "steps_per_epoch"),
                      ("crop", "data", "crop"), ("epochs", "train", "epochs"),
                      ("lr", "train", "learning_rate"))


def apply_overrides(cfg, args):
    """Command-line options override the config file (sizes, counts and the learning
    rate must be positive: ``CinnError`` otherwise, before anything is changed)."""
    from cinn.errors import CinnError

    given = [(flag, section, key, getattr(args, flag, None))
             for flag, section, key in POSITIVE_OVERRIDES]
    given = [g for g in given if g[3] is not None]
    for flag, _, _, value in given:
        if not value > 0:
            raise CinnError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    for _, section, key, value in given:
        cfg[section][key] = value
    if getattr(args, "scale", None) is not None:
        cfg["model"]["scale"] = args.scale
    if getattr(args, "backprop", None) is not None:
        cfg["train"]["backprop"] = args.backprop
    if args.seed is not None:
        cfg["seed"] = args.seed
    return cfg


def build(task, cfg):
    """The app's model from the config's ``model`` section, with the config's
    ``train.backprop`` mode (``standard`` or ``inverse``, see ``cinn.reversible``)."""
    from cinn.reversible import check_backprop

    backprop = check_backprop(cfg.get("train", {}).get("backprop"))
    model = task.build_model(cfg["model"])
    model.backprop = backprop
    return model


def task_render(task, model):
    """The task's per-epoch picture, ``render_samples(c, samples, model=None)``, bound to
    the model whose samples it shows (None where the task has none)."""
    render = getattr(task, "render_samples", None)
    return None if render is None else partial(render, model=model)


def run(args):
    import keras

    from cinn.callbacks import save_atomic
    from cinn.distribute import make_distribution
    from cinn.reversible import check_backprop
    from cinn.training import train

    task = importlib.import_module(f"cinn.apps.{args.app}.task")
    variant = getattr(task, "config_variant", lambda _: None)(args)
    cfg = apply_overrides(load_config(args.app, args.config, variant), args)
    tcfg = cfg["train"]
    check_backprop(tcfg.get("backprop"))  # a typo fails before any work is done
    # first thing TensorFlow does: a multi-worker strategy must exist before any op runs
    dist = make_distribution(getattr(args, "strategy", None) or tcfg.get("strategy", "auto"))
    batch = cfg["data"].get("batch_size")
    if dist.name == "data_parallel":
        dist.check_batch(batch)
    seed = int(cfg.get("seed", 0))
    keras.utils.set_random_seed(seed)
    out = Path(args.out or f"runs/{args.app}")
    out.mkdir(parents=True, exist_ok=True)
    if dist.is_chief:
        (out / "config.json").write_text(json.dumps(cfg, indent=2))
    print(f"[cinn] loading data from {args.data}", flush=True)
    train_ds, val_ds = task.make_datasets(args.data, cfg, seed=seed)
    split = ""
    if batch:
        split = f"; global batch {batch}" + (
            f" = {dist.num_replicas} x {int(batch) / dist.num_replicas:g}"
            if dist.num_replicas > 1 else "")
    print(f"[cinn] distribution: {dist.describe()}{split}", flush=True)
    with dist.scope():  # model, optimizer (created by train) and fit under the strategy
        model = build(task, cfg)
        print(f"[cinn] {args.app}: {model.count_params():,} parameters, backend "
              f"{keras.backend.backend()}, backprop {model.backprop}, writing to {out}",
              flush=True)
        start = time.time()
        history = train(model, train_ds, val_ds, epochs=int(tcfg.get("epochs", 10)),
                        learning_rate=float(tcfg.get("learning_rate", 1e-3)),
                        clipnorm=tcfg.get("clipnorm"),
                        global_clipnorm=tcfg.get("global_clipnorm"), out_dir=out,
                        lr_schedule=tcfg.get("lr_schedule", "constant"),
                        checkpoint_every=tcfg.get("checkpoint_every"), verbose=_verbosity(args),
                        tensorboard=bool(tcfg.get("tensorboard", True)),
                        render=task_render(task, model), seed=seed,
                        jit_compile=tcfg.get("jit_compile", "auto"),
                        init=getattr(args, "init", None),
                        initial_step=getattr(args, "init_step", None) or 0)
        save_atomic(model, out / "model.keras")  # every worker saves (collective); chief keeps
    if not dist.is_chief:
        return 0
    summary = {"seconds": round(time.time() - start, 1), "strategy": dist.name,
               "replicas": dist.num_replicas,
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    (out / "history.json").write_text(json.dumps(summary, indent=2))
    print(f"[cinn] done in {summary['seconds']} s; model saved to {out / 'model.keras'}")
    return 0


def _verbosity(args):
    """``--verbose``, else Keras' progress bar on a terminal and one line per epoch in a
    log file (a progress bar there is one long line of control characters)."""
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2
