"""How cost grows: time per image against the NaFlex sequence length, and time
per training step against the batch size, plotted to a PNG.

  NaFlex   a B-width NaFlex image tower (`--depth` layers) encodes a batch of
           mixed aspect ratios (`predict_on_batch`) at N = 128, 256, 576, 784,
           1024 patches (the lengths SigLIP 2 trained with); time per image.
  training `SigLIP2` (sigmoid loss, paper optimiser) at fixed-res B/16 @ 224,
           `train_on_batch` at each batch size; time per step and per example.

Each measurement alternates with a float32 GEMM (the matmul peak) round by
round, so the plot can also show the share of the peak each point reaches.
One subprocess per backend; all backends go into one figure.

Usage: python benchmarks/scaling.py [--backends jax] [--depth 4]
       [--lengths 128,256,576,784,1024] [--batch-sizes 2,4,8,16]
       [--output benchmarks/scaling.png] [--repeats 3]
"""

import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import encoders  # noqa: E402
import train_step  # noqa: E402


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="jax")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--lengths", default="128,256,576,784,1024")
    parser.add_argument("--naflex-batch", type=int, default=4)
    parser.add_argument("--batch-sizes", default="2,4,8,16")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "scaling.png"))
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def naflex_points(args, peak_fn):
    """`[{length, seconds_per_image, util}]` for our NaFlex tower."""
    from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder

    tower = SigLIP2VisionEncoder(patch_size=16, image_size=None, **common.keras_widths(args.depth))
    points = []
    for length in (int(x) for x in args.lengths.split(",")):
        options = encoders.parse(["--task", "naflex", "--patches", str(length),
                                  "--batch", str(args.naflex_batch), "--depth", str(args.depth)])
        inputs, _ = encoders.make_inputs(options)
        times = common.interleaved(
            {"ours": lambda: tower.predict_on_batch(inputs), "matmul": peak_fn}, args.repeats)
        flops = encoders.forward_flops(options, inputs)
        points.append({"length": length,
                       "seconds_per_image": statistics.median(times["ours"]) / args.naflex_batch,
                       "util": common.utilisation(flops, times["ours"], times["matmul"])})
    return points


def training_points(args, peak_fn):
    """`[{batch, seconds, util}]` for our sigmoid-loss training step."""
    import torch
    from transformers import SiglipModel

    points = []
    for batch in (int(x) for x in args.batch_sizes.split(",")):
        options = train_step.parse(["--depth", str(args.depth), "--batch", str(batch),
                                    "--image-size", str(args.image_size),
                                    "--vocab", str(args.vocab)])
        torch.manual_seed(0)
        state = {k: v.detach().numpy() for k, v in
                 SiglipModel(train_step.reference_config(options)).state_dict().items()}
        model, _ = train_step.our_model(options, state, full=False)
        images, token_ids = train_step.make_batch(options)
        step = train_step.step_fn(model, {"images": images, "token_ids": token_ids})
        times = common.interleaved({"ours": step, "matmul": peak_fn}, args.repeats)
        points.append({"batch": batch, "seconds": statistics.median(times["ours"]),
                       "util": common.utilisation(train_step.step_flops(options),
                                                  times["ours"], times["matmul"])})
        del model, state
    return points


def plot(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend, r in results.items():
        lengths = [p["length"] for p in r["naflex"]]
        per_image = [1e3 * p["seconds_per_image"] for p in r["naflex"]]
        left.plot(lengths, per_image, "o-", label=backend)
        for p, y in zip(r["naflex"], per_image):
            left.annotate(f"{p['util']:.0%}", (p["length"], y), textcoords="offset points",
                          xytext=(0, 6), fontsize=7, ha="center")
        batches = [p["batch"] for p in r["training"]]
        right.plot(batches, [p["seconds"] for p in r["training"]], "o-", label=f"{backend} step")
        right.plot(batches, [p["seconds"] / p["batch"] for p in r["training"]], "s--",
                   label=f"{backend} per example")
    if results:
        first = next(iter(results.values()))["naflex"]
        lengths = np.array([p["length"] for p in first], float)
        base = 1e3 * first[0]["seconds_per_image"]
        left.plot(lengths, base * lengths / lengths[0], ":", color="grey", label="∝ N (linear)")
    left.set(xscale="log", yscale="log", xlabel="NaFlex sequence length N (patches)",
             ylabel="ms per image", title=f"NaFlex B/16 encoding, depth {args.depth}\n"
                                          "(labels: share of matmul peak)")
    left.set_xticks([int(x) for x in args.lengths.split(",")], labels=args.lengths.split(","))
    right.set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds",
              title=f"Training step (sigmoid), B/16 @ {args.image_size}, depth {args.depth}")
    right.set_xticks([int(x) for x in args.batch_sizes.split(",")],
                     labels=args.batch_sizes.split(","))
    for axis in (left, right):
        axis.minorticks_off()
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)


def main(argv=None):
    args = parse(argv)
    if args.json:
        common.set_threads()
        import keras  # noqa: F401  (so the peak also tries the backend's matmul)

        peak_fn = common.matmul_fn()
        print(json.dumps({"naflex": naflex_points(args, peak_fn),
                          "training": training_points(args, peak_fn)}))
        return
    flags = ("depth", "lengths", "naflex_batch", "batch_sizes", "image_size", "vocab", "repeats")
    results = common.run_backends(os.path.abspath(__file__), args, flags, args.backends.split(","))
    rows = [{"backend": b, "what": f"NaFlex N={p['length']}", "ms": 1e3 * p["seconds_per_image"],
             "unit": "ms/image", "util": p["util"]} for b, r in results.items() for p in r["naflex"]]
    rows += [{"backend": b, "what": f"train batch {p['batch']}", "ms": 1e3 * p["seconds"],
              "unit": "ms/step", "util": p["util"]} for b, r in results.items()
             for p in r["training"]]
    print(f"Cost growth, B widths, depth {args.depth}; median of {args.repeats} rounds.")
    print()
    print(common.format_table(rows, [("backend", "backend", ""), ("what", "measurement", ""),
                                     ("ms", "time", ".1f"), ("unit", "unit", ""),
                                     ("util", "% of peak", ".1%")]))
    if results:
        plot(results, args)
        print(f"\nplot: {args.output}")


if __name__ == "__main__":
    main()
