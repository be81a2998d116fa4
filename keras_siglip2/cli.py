"""The `siglip2` command line.

    siglip2 demo [--output-dir DIR] [--steps N] [--backend jax|tensorflow|torch]
    siglip2 convert SRC DST
    siglip2 presets

Heavy imports happen after `--backend` has set `KERAS_BACKEND`.
"""

import argparse
import os
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="siglip2", description="SigLIP 2 vision-language encoders for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--backend", choices=("jax", "tensorflow", "torch"),
            help="Keras backend (default: $KERAS_BACKEND, else jax).",
        )
        return sub

    demo = command(
        "demo",
        "Train a tiny SigLIP 2 from scratch on the built-in procedural dataset, "
        "evaluate it and save metrics, plots and a preset. Offline; resumable.",
    )
    demo.add_argument("--output-dir", default="siglip2_demo", help="Where results go (default: %(default)s).")
    demo.add_argument("--steps", type=int, default=900, help="Training steps (default: %(default)s).")
    demo.add_argument("--batch-size", type=int, default=32, help="Default: %(default)s.")
    demo.add_argument("--num-train", type=int, default=6000, help="Training images (default: %(default)s).")
    demo.add_argument("--num-test", type=int, default=360, help="Held-out images (default: %(default)s).")
    demo.add_argument("--seed", type=int, default=0, help="Default: %(default)s.")

    convert = command(
        "convert",
        "Convert a checkpoint (name/alias, hf:// or kaggle:// handle, Hugging Face or "
        "keras-hub directory, big_vision .npz) into a keras_siglip2 preset directory.",
    )
    convert.add_argument("source")
    convert.add_argument("destination")
    convert.add_argument("--dtype", help="Weights dtype of the result, e.g. bfloat16.")
    convert.add_argument("--overwrite", action="store_true", help="Replace a non-empty DESTINATION.")

    command("presets", "List the released checkpoints with their aliases and sizes.")
    return parser


def _run(args):
    if args.command == "demo":
        from keras_siglip2.demo import run_demo

        run_demo(
            output_dir=args.output_dir, steps=args.steps, num_train=args.num_train,
            num_test=args.num_test, batch_size=args.batch_size, seed=args.seed,
        )
    elif args.command == "convert":
        from keras_siglip2.presets.convert import convert

        path = convert(args.source, args.destination, dtype=args.dtype, overwrite=args.overwrite)
        print(f"Wrote {path}")
    elif args.command == "presets":
        from keras_siglip2.configs import list_presets

        list_presets(verbose=True)


def main(argv=None):
    args = _parser().parse_args(argv)
    if "keras" in sys.modules:  # called from Python: Keras' backend is fixed already
        active = sys.modules["keras"].backend.backend()
        if args.backend and args.backend != active:
            print(f"error: Keras already runs on {active}; --backend {args.backend} "
                  "must be chosen before Keras is imported", file=sys.stderr)
            return 2
    else:  # the `siglip2` command: nothing has imported Keras yet
        os.environ["KERAS_BACKEND"] = args.backend or os.environ.get("KERAS_BACKEND") or "jax"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
