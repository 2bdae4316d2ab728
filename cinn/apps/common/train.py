"""``cinn train APP``: the same training command for every app."""
import importlib
import json
import sys
import time
from functools import partial
from pathlib import Path

from cinn.apps.common.config import load_config

#: the ``train`` section of a config: its keys (``cinn.apps.common.config`` allows these
#: and no others) and their defaults
TRAIN_DEFAULTS = {
    "epochs": 10,
    "learning_rate": 1e-3,
    "lr_schedule": "constant",   # "constant" | "cosine" (down to 5% over the epochs)
    "clipnorm": None,            # clip each gradient tensor's norm
    "global_clipnorm": None,     # clip the norm of all gradients together
    "checkpoint_every": None,    # steps between checkpoints (also at every epoch end)
    "tensorboard": True,         # TensorBoard logs and a sample grid per epoch
    "jit_compile": "auto",       # see cinn.training.resolve_jit_compile
    "backprop": "standard",      # "standard" | "inverse" (cinn.reversible)
    "strategy": "auto",          # see cinn.distribute.make_distribution (--strategy)
    "init": None,                # warm start from these weights (--init wins)
    "divergence_margin": 1.0,    # stop when the loss runs this many bits/dim above its best
}

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


def check(args):
    """``cinn train``'s checks before Keras is imported (one-line ``CinnError``s):
    every ``--data`` folder holds images, the config loads, the numbers that must be
    positive are, the ``--init`` file exists, the run folder can be written."""
    from cinn.apps.common.images import list_images
    from cinn.apps.common.outputs import check_out_dir
    from cinn.errors import CinnError

    for folder in [args.data] if isinstance(args.data, str) else args.data:
        list_images(folder)
    cfg = apply_overrides(load_config(args.app, args.config), args)
    init = getattr(args, "init", None)
    if init is not None and not Path(init).is_file():
        raise CinnError(f"--init {init}: no such model file")
    init = cfg["train"].get("init")
    if getattr(args, "init", None) is None and init and not Path(init).is_file():
        raise CinnError(f"train.init {init}: no such model file")
    if (getattr(args, "init_step", None) or 0) < 0:
        raise CinnError(f"--init-step must be >= 0, got {args.init_step}")
    check_out_dir(args.out or f"runs/{args.app}", "--out")


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

    from cinn.callbacks import read_history, save_atomic, write_json_atomic
    from cinn.distribute import make_distribution
    from cinn.reversible import check_backprop
    from cinn.training import train

    task = importlib.import_module(f"cinn.apps.{args.app}.task")
    variant = getattr(task, "config_variant", lambda _: None)(args)
    cfg = apply_overrides(load_config(args.app, args.config, variant), args)
    tcfg = {**TRAIN_DEFAULTS, **cfg["train"]}
    check_backprop(tcfg["backprop"])  # a typo fails before any work is done
    # first thing TensorFlow does: a multi-worker strategy must exist before any op runs
    dist = make_distribution(getattr(args, "strategy", None) or tcfg["strategy"])
    batch = cfg["data"].get("batch_size")
    if dist.name == "data_parallel":
        dist.check_batch(batch)
    seed = int(cfg.get("seed", 0))
    keras.utils.set_random_seed(seed)
    out = Path(args.out or f"runs/{args.app}")
    out.mkdir(parents=True, exist_ok=True)
    if dist.is_chief:
        (out / "config.json").write_text(json.dumps(cfg, indent=2))
    # --data: one folder or several (cinn.apps.common.data.load_folder reads a list)
    data = args.data if isinstance(args.data, str) or len(args.data) != 1 else args.data[0]
    shown = data if isinstance(data, str) else ", ".join(map(str, data))
    print(f"[cinn] loading data from {shown}", flush=True)
    train_ds, val_ds = task.make_datasets(data, cfg, seed=seed)
    if val_ds is None and int(cfg["data"].get("val_images", 16)) > 0:
        print(f"cinn: note: {shown} holds too few images to hold some out for validation "
              "(a fifth of them, at least one, so 5 images or more): training without "
              "validation (no val_loss)", file=sys.stderr, flush=True)
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
        train(model, train_ds, val_ds, epochs=int(tcfg["epochs"]),
              learning_rate=float(tcfg["learning_rate"]),
              clipnorm=tcfg["clipnorm"],
              global_clipnorm=tcfg["global_clipnorm"], out_dir=out,
              lr_schedule=tcfg["lr_schedule"],
              checkpoint_every=tcfg["checkpoint_every"], verbose=_verbosity(args),
              tensorboard=bool(tcfg["tensorboard"]),
              render=task_render(task, model), seed=seed,
              jit_compile=tcfg["jit_compile"],
              init=getattr(args, "init", None) or tcfg["init"],
              initial_step=getattr(args, "init_step", None) or 0,
              divergence_margin=tcfg["divergence_margin"])
        save_atomic(model, out / "model.keras")  # every worker saves (collective); chief keeps
    if not dist.is_chief:
        return 0
    # history.json holds every epoch, those of earlier runs of this folder included
    # (written at each epoch's end by cinn.callbacks.HistoryLog): add the summary
    summary = read_history(out / "history.json")
    summary.update({"seconds": round(time.time() - start, 1), "strategy": dist.name,
                    "replicas": dist.num_replicas})
    write_json_atomic(out / "history.json", summary)
    print(f"[cinn] done in {summary['seconds']} s; model saved to {out / 'model.keras'}")
    return 0


def _verbosity(args):
    """``--verbose``, else Keras' progress bar on a terminal and one line per epoch in a
    log file (a progress bar there is one long line of control characters)."""
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2
