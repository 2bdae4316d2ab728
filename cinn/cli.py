"""The ``cinn`` command line: ``cinn train|evaluate|export APP ...`` and each app's
sampling command (``cinn colorize``, ``cinn superres``, ``cinn inpaint``).

User errors print one line (``cinn: error: ...``) and exit with status 1.
Heavy imports (Keras, TensorFlow) happen inside the commands, so ``--help`` is fast.
"""
import argparse
import importlib
import os
import sys

APPS = ("colorization", "superres", "inpainting")


def _add_train(sub):
    p = sub.add_parser("train", help="train an app's model by maximum likelihood")
    p.add_argument("app", choices=APPS)
    p.add_argument("--data", required=True, help="folder of training images")
    p.add_argument("--config", help="YAML config (default: configs/APP.yaml)")
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
    p.set_defaults(func=lambda a: importlib.import_module("cinn.apps.common.train").run(a))


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
                   help="also the quality at each of these temperatures: superres, PSNR-Y of "
                   "one sample per image (default: 0 0.3 0.5 0.7 0.9; none: off); "
                   "colorization, the cINN's best-of-N and single-sample PSNR, SSIM and "
                   "colourfulness (default: off)")
    from cinn.apps.colorization.global_colour import add_arguments as add_colour_arguments

    add_colour_arguments(p, prefix="colorization: ")
    p.add_argument("--diversity-samples", type=int, default=10, metavar="N",
                   help="superres: NTIRE 2021 diversity score of N samples per image at "
                   "--temperature (default 10, as NTIRE; 0: off)")
    p.set_defaults(func=lambda a: importlib.import_module(f"cinn.apps.{a.app}.evaluate").run(a))


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
    from cinn._xla_cpu import use_eigen_convolutions

    use_eigen_convolutions()  # before Keras imports JAX: XLA's CPU flags (cinn/_xla_cpu.py)
    _import_quietly("keras")
    if args.command == "train":
        try:  # training writes TensorBoard logs with TensorFlow, also on JAX
            _import_quietly("tensorflow")
        except ImportError:
            pass
    from cinn.errors import CinnError

    try:
        return int(args.func(args) or 0)
    except CinnError as err:
        print(f"cinn: error: {err}", file=sys.stderr)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"cinn: error: {err.filename or ''}: {err.strerror}", file=sys.stderr)
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
