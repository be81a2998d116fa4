"""The `siglip2` command line.

    siglip2 zero-shot IMAGE... --labels a,b,c [--plot out.png]
    siglip2 embed INPUT... --output out.npy|out.parquet [--texts]
    siglip2 eval zero-shot|retrieval DATA
    siglip2 heatmap IMAGE --text "a query" --output out.png
    siglip2 export DESTINATION [--format tf_saved_model|onnx]
    siglip2 train CONFIG
    siglip2 demo [--output-dir DIR] [--steps N]
    siglip2 convert SRC DST
    siglip2 presets

Every command takes `--backend jax|tensorflow|torch`; those that use a model
take `--preset` (an alias such as `so400m`, a path, or an `hf://` / `kaggle://`
handle). Heavy imports happen after `--backend` has set `KERAS_BACKEND`.
Exit codes: 0 success, 1 bad input or failure (one `error: ...` line, no
traceback; a longer message, such as a download failure's remedies, goes on
indented lines below it), 2 bad command line, 130 interrupted (SIGINT), 143
terminated (SIGTERM; `train` and `demo` stop at the next step with a
checkpoint first).
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

DEFAULT_PRESET = "b16"


def _comma_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def _int_list(text):
    try:
        return tuple(int(item) for item in _comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}")


def _parser():
    parser = argparse.ArgumentParser(
        prog="siglip2",
        description="SigLIP 2 vision-language encoders for Keras 3.",
        epilog="Run `siglip2 COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text, model=False, **kwargs):
        sub = commands.add_parser(name, help=help_text, description=help_text, **kwargs)
        sub.add_argument(
            "--backend", choices=("jax", "tensorflow", "torch"),
            help="Keras backend (default: $KERAS_BACKEND, else jax).",
        )
        if model:
            sub.add_argument(
                "--preset", default=DEFAULT_PRESET,
                help="Model: an alias (so400m, b16-naflex, ...), a preset or checkpoint "
                "path, or an hf:// / kaggle:// handle (default: %(default)s).",
            )
            sub.add_argument("--batch-size", type=int, default=32, help="Default: %(default)s.")
            sub.add_argument(
                "--max-num-patches", type=int,
                help="NaFlex models: patches per image (default: the preset's).",
            )
        return sub

    zero_shot = command(
        "zero-shot", "Classify images against free-text labels (sigmoid probabilities).",
        model=True,
    )
    zero_shot.add_argument("images", nargs="+", metavar="IMAGE", help="Image files or folders.")
    zero_shot.add_argument(
        "--labels", required=True, type=_comma_list, help="Comma-separated labels, e.g. cat,dog."
    )
    zero_shot.add_argument(
        "--templates", default="plain",
        help="Prompt templates: plain (the label itself), imagenet (the 80 CLIP ImageNet "
        "templates plus the label), or a ';'-separated list with {} (default: %(default)s).",
    )
    zero_shot.add_argument("--plot", metavar="PNG", help="Also save a chart of the results.")
    zero_shot.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    embed = command(
        "embed", "Write L2-normalised embeddings of images or texts to .npy or .parquet.",
        model=True,
    )
    embed.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="Image files or folders (or texts with --texts)."
    )
    embed.add_argument("--texts", action="store_true", help="The inputs are texts.")
    embed.add_argument("--texts-file", help="A UTF-8 file of texts, one per line.")
    embed.add_argument(
        "--output", required=True,
        help="OUT.npy (an (N, D) float32 array) or OUT.parquet (columns input, embedding).",
    )

    evaluate = command(
        "eval", "Evaluate zero-shot classification or image-text retrieval on a dataset.",
        model=True,
    )
    evaluate.add_argument("task", choices=("zero-shot", "retrieval"))
    evaluate.add_argument(
        "data",
        help="zero-shot: a folder with one subfolder of images per class; retrieval: a folder "
        "of images with same-named .txt captions (one per line), or a .jsonl/.csv file with "
        "image and caption; either: demo[:N[:SEED]] for the demo's held-out split.",
    )
    evaluate.add_argument("--classes", type=_comma_list, help="zero-shot: class names by label.")
    evaluate.add_argument(
        "--templates", default="imagenet",
        help="zero-shot: plain, imagenet (default) or a ';'-separated list with {}.",
    )
    evaluate.add_argument("--top-k", type=_int_list, default=(1, 5), help="Default: 1,5.")
    evaluate.add_argument("--ks", type=_int_list, default=(1, 5, 10), help="Default: 1,5,10.")
    evaluate.add_argument("--output-json", help="Also write the results to this JSON file.")

    heatmap = command(
        "heatmap", "Render the similarity of each image patch with a text query.", model=True
    )
    heatmap.add_argument("image")
    heatmap.add_argument("--text", required=True, help="The text query.")
    heatmap.add_argument("--output", required=True, help="Where the picture goes (.png).")

    export = command(
        "export",
        "Export the image and text encoders to a TF SavedModel (preprocessing inside) or "
        "to ONNX (preprocessing documented in siglip2_export.json).",
        model=True,
    )
    export.add_argument("destination", help="A new (or empty) folder.")
    export.add_argument(
        "--format", choices=("tf_saved_model", "onnx", "both"), default="tf_saved_model",
        help="both: DESTINATION/tf_saved_model and DESTINATION/onnx (default: %(default)s).",
    )

    train = command(
        "train", "Train or fine-tune from a JSON config (resumable).",
        epilog='CONFIG example: {"model": "tiny", "data": "train.jsonl", "steps": 1000, '
        '"batch_size": 32, "output_dir": "run"}; see keras_siglip2.training for every key.',
    )
    train.add_argument("config", help="A JSON file.")

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
    demo.add_argument(
        "--ablation", action="store_true",
        help="Train three variants (sigmoid only; + LocCa; + self-distillation and masked "
        "prediction) with the same budget and compare them (ablation.json, ablation.png).",
    )

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


# ------------------------------------------------------------------ inputs
def image_paths(items):
    """Files as given, folders expanded to the images inside them (sorted)."""
    from keras_siglip2.data.sources import IMAGE_SUFFIXES

    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise ValueError(
                    f"No images in the folder {path} (looked for {', '.join(IMAGE_SUFFIXES)})."
                )
            paths += found
        elif not path.exists():
            raise FileNotFoundError(f"Image file {item!r} does not exist.")
        else:
            paths.append(str(path))
    return paths


def _templates(text):
    return text if text in ("plain", "imagenet") else [t for t in text.split(";") if t]


def _load_model(args):
    from keras_siglip2.models.siglip2 import SigLIP2

    return SigLIP2.from_preset(args.preset)


def _image_options(args):
    return {"batch_size": args.batch_size, "max_num_patches": args.max_num_patches}


# ---------------------------------------------------------------- commands
def _zero_shot(args):
    labels = args.labels
    if not labels:
        raise ValueError("--labels is empty: give comma-separated labels, e.g. --labels cat,dog.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels has duplicates: {labels}.")
    images = image_paths(args.images)
    model = _load_model(args)
    probabilities, best = model.zero_shot(
        images, labels, templates=_templates(args.templates), return_argmax=True,
        **_image_options(args),
    )
    rows = [
        {
            "image": image,
            "label": labels[choice],
            "probability": float(row[choice]),
            "probabilities": {label: float(p) for label, p in zip(labels, row)},
        }
        for image, choice, row in zip(images, best, probabilities)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(len(Path(r["image"]).name) for r in rows)
        for row in rows:
            others = sorted(row["probabilities"].items(), key=lambda kv: -kv[1])[1:3]
            rest = ", ".join(f"{label} {p:.3f}" for label, p in others)
            print(
                f"{Path(row['image']).name:<{width}}  {row['label']}  {row['probability']:.3f}"
                + (f"   (next: {rest})" if rest else "")
            )
    if args.plot:
        from keras_siglip2.visualize import plot_zero_shot

        plot_zero_shot(images, labels, probabilities, args.plot, titles=images)
        print(f"Wrote {args.plot}")


def _embed(args):
    output = Path(args.output)
    if output.suffix not in (".npy", ".parquet"):
        raise ValueError(f"--output must end in .npy or .parquet; got {args.output!r}.")
    if args.texts_file:
        try:
            inputs = Path(args.texts_file).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(
                f"--texts-file {args.texts_file} is not UTF-8 text ({error.reason} at byte "
                f"{error.start}); save it as UTF-8."
            ) from None
        inputs = [line for line in inputs if line.strip()]
        texts = True
    else:
        texts = args.texts
        inputs = list(args.inputs) if texts else image_paths(args.inputs)
    if not inputs:
        raise ValueError("Nothing to embed: give image files/folders, or texts with --texts.")
    model = _load_model(args)
    if texts:
        embeddings = model.embed_texts(inputs, batch_size=args.batch_size)
    else:
        embeddings = model.embed_images(inputs, **_image_options(args))
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        import numpy as np

        np.save(output, embeddings)
    else:
        _write_parquet(output, inputs, embeddings)
    print(f"Wrote {len(embeddings)} embeddings of size {embeddings.shape[1]} to {output}")


def _write_parquet(path, inputs, embeddings):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Writing .parquet needs pyarrow: pip install pyarrow") from None
    values = pa.array(embeddings.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, embeddings.shape[1])
    pq.write_table(pa.table({"input": inputs, "embedding": column}), path)


def _evaluate(args):
    from keras_siglip2 import evaluation

    if not evaluation.data.demo_split(args.data):  # fail on bad data before loading a model
        if args.task == "zero-shot":
            evaluation.classification_data(args.data, args.classes)
        else:
            evaluation.retrieval_data(args.data)
    model = _load_model(args)
    if args.task == "zero-shot":
        results = evaluation.evaluate_zero_shot(
            model, args.data, class_names=args.classes, templates=_templates(args.templates),
            top_k=args.top_k, batch_size=args.batch_size,
        )
        title = f"Zero-shot on {args.data}: {results['num_images']} images, {results['num_classes']} classes"
    else:
        results = evaluation.evaluate_retrieval(model, args.data, ks=args.ks, batch_size=args.batch_size)
        title = f"Retrieval on {args.data}: {results['num_images']} images, {results['num_texts']} texts"
    print(evaluation.format_results(results, title=title))
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(results, indent=2))
        print(f"Wrote {args.output_json}")


def _heatmap(args):
    from keras_siglip2.visualize import plot_patch_similarity

    (image,) = image_paths([args.image])
    model = _load_model(args)
    similarity = plot_patch_similarity(
        model, image, args.text, args.output, max_num_patches=args.max_num_patches
    )
    print(f"Wrote {args.output} ({similarity.shape[0]}x{similarity.shape[1]} patches)")


def _run(args):
    if args.command == "zero-shot":
        _zero_shot(args)
    elif args.command == "embed":
        _embed(args)
    elif args.command == "eval":
        _evaluate(args)
    elif args.command == "heatmap":
        _heatmap(args)
    elif args.command == "export":
        formats = ["tf_saved_model", "onnx"] if args.format == "both" else args.format
        _load_model(args).export(
            args.destination, format=formats, max_num_patches=args.max_num_patches
        )
    elif args.command == "train":
        from keras_siglip2.training import run_training

        run_training(args.config)
    elif args.command == "demo":
        from keras_siglip2.demo import run_ablation, run_demo

        options = dict(
            steps=args.steps, num_train=args.num_train, num_test=args.num_test,
            batch_size=args.batch_size, seed=args.seed,
        )
        if args.ablation:
            run_ablation(output_dir=args.output_dir, **options)
        else:
            run_demo(output_dir=args.output_dir, **options)
    elif args.command == "convert":
        from keras_siglip2.presets.convert import convert

        path = convert(args.source, args.destination, dtype=args.dtype, overwrite=args.overwrite)
        print(f"Wrote {path}")
    elif args.command == "presets":
        from keras_siglip2.configs import list_presets

        list_presets(verbose=True)


def _error_lines(error):
    """The one `error: ...` line for `error`, and its message's further lines
    indented below it."""
    message = str(error).strip() or type(error).__name__
    if not isinstance(error, (ValueError, TypeError, OSError, ImportError, RuntimeError)):
        message = f"{type(error).__name__}: {message}"  # unexpected: say what it is
    first, *rest = message.splitlines()
    return "\n".join([f"error: {first}", *("  " + line for line in rest)])


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
    except KeyboardInterrupt as interrupt:  # `callbacks.TrainingInterrupted` says where
        number = getattr(interrupt, "signal", signal.SIGINT)
        print(f"\n{str(interrupt) or 'interrupted.'}", file=sys.stderr)
        return 128 + number
    except Exception as error:  # every failure: one line, no traceback
        print(_error_lines(error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
