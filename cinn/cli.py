"""The ``cinn`` command line: ``cinn train|evaluate|export APP ...`` and each app's
sampling command (``cinn colorize``, ``cinn superres``, ``cinn inpaint``).

User errors print one line (``cinn: error: ...``) and exit with status 1.
Heavy imports (Keras, TensorFlow) happen inside the commands, after each command's
``check`` of its arguments and files, so ``--help`` and usage errors are fast.
"""
import argparse
import importlib
import os
import sys
from pathlib import Path

APPS = ("colorization", "superres", "inpainting")


def _add_train(sub):
    p = sub.add_parser("train", help="train an app's model by maximum likelihood")
    p.add_argument("app", choices=APPS)
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="folder(s) of training images (several: all their images)")
    p.add_argument("--config", help="YAML config: a file, or the name of a shipped config "
                   "such as colorization_vivid (cinn/apps/configs; default: APP)")
    p.add_argument("--out", help="run folder (default: runs/APP); rerun to resume")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the config's)")
    p.add_argument("--steps", type=int, help="steps per epoch")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--crop", type=int, help="side of the square training crops in pixels "
                   "(super-resolution: of the HR crop)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--scale", type=int, choices=(4, 8), help="super-resolution factor")
    p.add_argument("--seed", type=int, help="seed of the initial weights, crops and data order "
                   "(default: the config's, else 0)")
    p.add_argument("--init", metavar="WEIGHTS.keras",
                   help="warm start: the weights of this model file (same architecture), "
                   "a fresh optimizer; ignored when --out holds a checkpoint (resume)")
    p.add_argument("--init-step", type=int, default=0, metavar="N",
                   help="with --init: count the run from global step N (the learning-rate "
                   "schedule continues there; training ends at epochs x steps)")
    p.add_argument("--backprop", choices=("standard", "inverse"),
                   help="inverse: backpropagation by inversion, the flow keeps no activations "
                   "(activation memory independent of depth on JAX, at 1.2-1.5x the step "
                   "time on a CPU; default: the config's train.backprop, else standard)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2),
                   help="0: quiet, 1: a progress bar, 2: one line per epoch (default: 1 on a "
                   "terminal, 2 when the output goes to a file or pipe, e.g. a nohup log)")
    p.add_argument("--strategy", choices=("auto", "one", "mirrored", "multiworker"),
                   help="data-parallel training: mirrored = all local GPUs, multiworker = "
                   "machines named by TF_CONFIG, auto = mirrored with several GPUs "
                   "(default: the config's train.strategy, else auto)")
    p.set_defaults(func=lambda a: importlib.import_module("cinn.apps.common.train").run(a),
                   check=lambda a: importlib.import_module("cinn.apps.common.train").check(a))


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="evaluate an app's model on a folder of images")
    p.add_argument("app", choices=APPS)
    p.add_argument("--data", required=True, help="folder of evaluation images")
    p.add_argument("--weights", help="model file or run folder (default: shipped)")
    p.add_argument("-n", "--num-samples", type=int, default=8)
    p.add_argument("--temperature", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--scale", type=int, choices=(4, 8), default=4)
    p.add_argument("--size", type=int, help="evaluate on centre crops of this size")
    p.add_argument("--temperatures", type=float, nargs="*", metavar="T",
                   help="also sample the flow at each of these temperatures and print the "
                   "temperature at which the range of the N samples covers the truth as "
                   "often as a calibrated posterior's, (N-1)/(N+1) (default: off)")
    p.add_argument("-o", "--out", default="out",
                   help="folder of the calibration plots (default: out)")
    p.add_argument("--local-temperature", type=float, metavar="T",
                   help="colorization: temperature of a flow's local latents, all but its "
                   "global ones (default 0.5; a flow without global latents: all of "
                   "them, unless --temperature is given)")
    p.add_argument("--saturation", type=float, nargs=2, metavar=("LO", "HI"),
                   help="colorization: global colour draws, each sample's ab scaled by a "
                   "factor log-uniform in [LO, HI], the regressor's too (default: off)")
    p.add_argument("--hue", type=float, metavar="DEG",
                   help="colorization: global colour draws, each sample's ab rotated by an "
                   "angle uniform in [-DEG, DEG] degrees, the regressor's too (default: off)")
    p.add_argument("--diversity-samples", type=int, default=10, metavar="N",
                   help="superres: NTIRE 2021 diversity score of N samples per image at "
                   "--temperature (default 10, as NTIRE; 0: off)")
    p.set_defaults(func=lambda a: importlib.import_module(f"cinn.apps.{a.app}.evaluate").run(a),
                   check=_check_evaluate)


def _check_evaluate(args):
    """``cinn evaluate``'s checks before Keras is imported (one-line errors): the
    data folder holds images, the numbers are in range, the ``--weights`` file
    exists, ``-o`` can be written."""
    from cinn.apps.common.images import list_images
    from cinn.apps.common.outputs import check_out_dir
    from cinn.apps.common.pretrained import weights_path
    from cinn.apps.common.sampling_args import check_sampling_arguments, curve_temperatures
    from cinn.errors import CinnError

    data = Path(args.data)
    if not (args.app == "superres" and data.is_dir()
            and any(p.is_dir() for p in data.iterdir())):   # superres: also a folder of
        list_images(data)                                   # data sets, checked one by one
    check_sampling_arguments(args, default_temperature=0.0)   # the defaults are valid
    curve_temperatures(args)
    if getattr(args, "local_temperature", None) is not None:
        from cinn.apps.colorization.cli import check_local_temperature

        check_local_temperature(args.local_temperature)
    for flag, value, least in (("--limit", args.limit, 1), ("--size", args.size, 1),
                               ("--diversity-samples", args.diversity_samples, 0)):
        if value is not None and value < least:
            raise CinnError(f"{flag} must be at least {least}, got {value}")
    if args.weights:
        weights_path(args.app, args.weights)
    check_out_dir(args.out)


class UsageError(Exception):
    """A command line argparse cannot parse (``main`` prints it as one line)."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``cinn: error: ...`` and exit status 1, like every
    other user error (argparse would print the usage and exit with 2); sub-commands
    use this class too."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


class _Version(argparse.Action):
    """``cinn --version``: ``cinn 0.1.0 (Keras 3.15.1, TensorFlow 2.21.0, JAX 0.10.2)``,
    from the installed packages' metadata, without importing them."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        found = {}
        for name in ("cinn", "Keras", "TensorFlow", "JAX"):
            try:
                found[name] = version(name.lower())
            except PackageNotFoundError:     # a framework not installed; cinn run from
                pass                         # a source tree that pip has not installed
        frameworks = ", ".join(f"{k} {v}" for k, v in found.items() if k != "cinn")
        print(f"cinn {found.get('cinn', '(not installed)')} ({frameworks})")
        parser.exit()


def build_parser():
    parser = _Parser(
        prog="cinn", description="Conditional invertible neural networks for images: "
        "many plausible answers for one input.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="the versions of cinn, Keras and the backends installed")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    for app in APPS:
        try:
            module = importlib.import_module(f"cinn.apps.{app}.cli")
        except ModuleNotFoundError:
            continue
        module.add_command(sub)
    for extra in ("cinn.apps.export_cli", "cinn.apps.demo.cli"):
        try:
            importlib.import_module(extra).add_command(sub)
        except ModuleNotFoundError:
            pass
    return parser


def _import_quietly(name):
    """Import ``name`` with file descriptor 2 pointed at /dev/null: TensorFlow's
    C++ start-up lines (CUDA drivers not found, ...) ignore TF_CPP_MIN_LOG_LEVEL.
    Python errors still surface after the import."""
    if name in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def pick_backend(environ=None):
    """The Keras backend for this process, set as ``KERAS_BACKEND``: the one
    ``KERAS_BACKEND`` names; else the one of ``keras.json`` (Keras' default:
    TensorFlow) when it is installed, else the other one (``pip install 'cinn[jax]'``
    alone works). ``UsageError`` when the backend asked for, or every one, is missing."""
    from importlib.util import find_spec

    from cinn._xla_cpu import keras_backend_name

    environ = os.environ if environ is None else environ
    wanted = keras_backend_name(environ)
    if environ.get("KERAS_BACKEND"):
        if wanted in ("tensorflow", "jax") and find_spec(wanted) is None:
            raise UsageError(f"KERAS_BACKEND={wanted}, but {wanted} is not installed: "
                             f"pip install 'cinn[{wanted}]'")
        return wanted
    for backend in (wanted, "tensorflow", "jax"):
        if find_spec(backend) is not None:
            environ["KERAS_BACKEND"] = backend
            return backend
    raise UsageError("no Keras backend installed: pip install 'cinn[tensorflow]' or "
                     "'cinn[jax]'")


def check(args):
    """The checks of a command that need no Keras: its ``check`` (set by the command
    with ``set_defaults(check=...)``: options, input files, the output folder) and
    the global colour options. ``main`` runs them before it imports Keras and
    TensorFlow (seconds and most of a gigabyte), so that a usage error or a missing
    file answers at once, with one line."""
    if hasattr(args, "saturation") or hasattr(args, "hue"):
        from cinn.apps.colorization.global_colour import from_arguments

        from_arguments(args)
    own = getattr(args, "check", None)
    if own is not None:
        own(args)


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        pick_backend()
    except UsageError as err:
        print(f"cinn: error: {err}", file=sys.stderr)
        return 1
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"cinn: error: {err}", file=sys.stderr)
        return 1
    from cinn.errors import CinnError

    try:
        check(args)  # before Keras (seconds, most of a GB): usage errors answer at once
        from cinn._xla_cpu import use_eigen_convolutions

        use_eigen_convolutions()  # before Keras imports JAX: XLA's CPU flags (_xla_cpu.py)
        _import_quietly("keras")
        if args.command == "train":
            try:  # training writes TensorBoard logs with TensorFlow, also on JAX
                _import_quietly("tensorflow")
            except ImportError:
                pass
        return int(args.func(args) or 0)
    except CinnError as err:
        print(f"cinn: error: {err}", file=sys.stderr)
    except OSError as err:  # not found, a folder, no permission, disk full, ...
        name = f"{err.filename}: " if err.filename else ""
        reason = err.strerror or (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"cinn: error: {name}{reason}", file=sys.stderr)
    except ValueError as err:
        print(f"cinn: error: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
    except MemoryError:
        print("cinn: error: out of memory; try a smaller image or fewer samples",
              file=sys.stderr)
    except KeyboardInterrupt:
        print("cinn: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
