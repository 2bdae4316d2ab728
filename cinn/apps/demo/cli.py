"""``cinn demo [--host 127.0.0.1] [--port 7860] [--weights-dir DIR] [--max-queue N]``:
the three apps in a local web page (``pip install -e '.[demo]'`` for Gradio)."""
import shutil
import signal


def add_command(sub):
    p = sub.add_parser(
        "demo", help="the three apps in a local web page (needs pip install -e '.[demo]')",
        description="Serves a page with one tab per app (colorization, super-resolution, "
        "inpainting): upload a picture, get N samples, their uncertainty map and PNG "
        "downloads. The models load once at start; requests wait in one queue. Needs no "
        "internet.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--weights-dir", metavar="DIR",
                   help="folder laid out like saved_models/ (colorization/"
                   "colorization_global.keras or colorization/model.keras, "
                   "superres/model.keras, superres/superres_x8.keras (optional), "
                   "inpainting/model.keras); default: the shipped weights")
    p.add_argument("--max-queue", type=int, default=16, metavar="N",
                   help="requests that may wait their turn (default 16); past them the page "
                   "says at once that the server is busy and when to try again")
    p.set_defaults(func=run, check=check)


def check(args):
    """``cinn demo``'s checks before Keras is imported: the port, the queue limit,
    the weights folder, Gradio installed."""
    import importlib.util
    from pathlib import Path

    from cinn.errors import CinnError

    if not 0 < args.port < 65536:
        raise CinnError(f"--port must be between 1 and 65535, got {args.port}")
    if args.max_queue < 1:
        raise CinnError(f"--max-queue must be at least 1, got {args.max_queue}")
    if args.weights_dir and not Path(args.weights_dir).is_dir():
        raise CinnError(f"--weights-dir {args.weights_dir}: no such folder")
    if importlib.util.find_spec("gradio") is None:
        raise CinnError("the demo needs Gradio: pip install -e '.[demo]'")


def run(args):
    from cinn.apps.demo.ui import offline_environment
    from cinn.errors import CinnError

    check(args)
    offline_environment()
    import keras

    from cinn.apps.demo import jobs, ui

    print(f"[cinn] demo: Keras backend {keras.backend.backend()}; loading the models",
          flush=True)
    models = jobs.load_models(args.weights_dir, say=lambda m: print(m, flush=True))
    workdir = ui.make_workdir()
    # SIGTERM (kill, docker stop, systemd) stops the server as Ctrl+C does, so that
    # the folder of uploads and results is removed below; a background job started
    # by a shell ignores Ctrl+C's SIGINT, and SIGTERM's default would skip `finally`.
    stop_like_ctrl_c = signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo = ui.build(models, workdir, max_queue=args.max_queue)
        print(f"[cinn] demo: starting http://{args.host}:{args.port} (Ctrl+C stops it)",
              flush=True)
        ui.launch(demo, args.host, args.port, workdir)
    except OSError as err:
        why = ("the port is in use" if "empty port" in str(err) else
               str(err).strip().splitlines()[0])
        raise CinnError(f"cannot serve on {args.host}:{args.port} ({why}); try another "
                        "--port") from None
    finally:
        signal.signal(signal.SIGTERM, stop_like_ctrl_c)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
