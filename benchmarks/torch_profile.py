"""Where the time goes on the PyTorch backend: `torch.profiler` on one call of
ours and of transformers, same shapes and weights, side by side.

Cases (B widths, `--depth` layers, float32, CPU):
  image   fixed-res B/16 @ 224 image tower forward (`predict_on_batch` against
          transformers' vision model under `inference_mode`)
  naflex  NaFlex B/16 tower forward at 256 patches, mixed aspect ratios
  text    text tower forward, length 64
  train   one sigmoid-loss `train_on_batch` against transformers' forward,
          backward, clip and `torch.optim.AdamW.step`

For each side it prints the wall time of the profiled calls, how many ATen
operators ran (the dispatcher's count: every one pays eager overhead), their
self time grouped by kind (matmul, attention, elementwise, copies and casts,
views and reshapes, reductions, optimizer), and the operators that differ
most in count or time. Counts are exact and machine-independent; times are
CPU self times, noisy on a shared machine (read them as shares).

Usage:
    KERAS_BACKEND=torch python benchmarks/torch_profile.py --case image [--depth 2]
        [--batch 8] [--calls 3] [--top 12]
"""

import argparse
import collections
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

KINDS = {
    "matmul": ("mm", "addmm", "bmm", "matmul", "linear", "einsum", "baddbmm", "_mkldnn"),
    "attention": ("scaled_dot_product", "_scaled_dot_product", "_softmax", "softmax",
                  "_safe_softmax"),
    "copies and casts": ("copy_", "_to_copy", "to", "clone", "contiguous", "empty_like",
                         "_copy_from", "detach", "lift_fresh"),
    "views and reshapes": ("view", "reshape", "_reshape_alias", "permute", "transpose", "t",
                           "expand", "unsqueeze", "squeeze", "as_strided", "slice", "select",
                           "split", "unbind", "_unsafe_view", "alias", "narrow", "flatten",
                           "unflatten", "cat", "stack", "index", "gather", "take"),
    "reductions": ("sum", "mean", "norm", "max", "min", "amax", "var", "var_mean",
                   "native_layer_norm", "layer_norm", "native_layer_norm_backward",
                   "linalg_vector_norm"),
    "optimizer": ("_foreach", "_fused_adam", "lerp", "addcmul", "addcdiv", "sqrt"),
}


def kind_of(name):
    """The KINDS bucket of an `aten::` operator name ('elementwise and other'
    otherwise): an exact name, its in-place form (`add_`), or a name prefix
    (`_foreach_mul_`, `scaled_dot_product_attention`)."""
    short = name.split("::")[-1]
    for kind, names in KINDS.items():
        if short in names or short.rstrip("_") in names or any(
                short.startswith(prefix) for prefix in names if len(prefix) > 6):
            return kind
    return "elementwise and other"


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("image", "naflex", "text", "train"), required=True)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="image/naflex/train 8, text 32")
    parser.add_argument("--calls", type=int, default=3, help="profiled calls per side")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--top", type=int, default=12, help="operators listed per table")
    args = parser.parse_args(argv)
    args.batch = args.batch or (32 if args.case == "text" else 8)
    return args


def inference_sides(args):
    """`{"ours": fn, "transformers": fn}` for a tower forward (encoders.py's setup)."""
    import encoders
    import keras
    import torch

    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.presets.huggingface import config_from_transformers, load_transformers_weights

    task = argparse.Namespace(task=args.case, depth=args.depth, batch=args.batch, image_size=224,
                              patches=256, vocab=32_000)
    reference = encoders.reference_model(task)
    backbone = SigLIP2Backbone.from_config(config_from_transformers(reference.config.to_dict()))
    load_transformers_weights(
        backbone, {k: v.detach().numpy() for k, v in reference.state_dict().items()}.__getitem__)
    ours = backbone.text_encoder if args.case == "text" else backbone.vision_encoder
    reference_tower = reference.text_model if args.case == "text" else reference.vision_model
    inputs, torch_inputs = encoders.make_inputs(task)

    def run_reference():
        with torch.inference_mode():
            return reference_tower(**torch_inputs).pooler_output

    return {"ours": lambda: keras.ops.convert_to_numpy(ours.predict_on_batch(inputs)["pooled"]),
            "transformers": run_reference}


def training_sides(args):
    """`{"ours": fn, "transformers": fn}` for one sigmoid training step (train_step.py's setup)."""
    import torch
    import train_step
    from transformers import SiglipModel

    task = train_step.parse(["--depth", str(args.depth), "--batch", str(args.batch), "--no-full"])
    torch.manual_seed(0)
    reference = SiglipModel(train_step.reference_config(task))
    state = {k: v.detach().numpy().copy() for k, v in reference.state_dict().items()}
    images, token_ids = train_step.make_batch(task)
    ours, _ = train_step.our_model(task, state, full=False)
    return {"ours": train_step.step_fn(ours, {"images": images, "token_ids": token_ids}),
            "transformers": train_step.reference_step(reference, images, token_ids)}


def profile(fn, calls):
    """(seconds per call, {aten op: [count, self µs]}) over `calls` profiled calls."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as recording:
        for _ in range(calls):
            fn()
    seconds = (time.perf_counter() - start) / calls
    ops = collections.defaultdict(lambda: [0, 0.0])
    for event in recording.key_averages():
        if event.key.startswith("aten::"):
            ops[event.key][0] += event.count / calls
            ops[event.key][1] += event.self_cpu_time_total / calls
    return seconds, dict(ops)


def kind_table(results):
    names = list(results)
    header = f"{'kind':<24}" + "".join(f"{n + ' ops':>18}{n + ' ms':>18}" for n in names)
    lines = [header]
    kinds = list(KINDS) + ["elementwise and other"]
    totals = {n: [0, 0.0] for n in names}
    for kind in kinds:
        row = f"{kind:<24}"
        for n in names:
            count = sum(c for op, (c, _) in results[n][1].items() if kind_of(op) == kind)
            micros = sum(t for op, (_, t) in results[n][1].items() if kind_of(op) == kind)
            totals[n][0] += count
            totals[n][1] += micros
            row += f"{count:>18.0f}{micros / 1e3:>18.1f}"
        lines.append(row)
    lines.append(f"{'all ATen operators':<24}" + "".join(
        f"{totals[n][0]:>18.0f}{totals[n][1] / 1e3:>18.1f}" for n in names))
    lines.append(f"{'wall per call':<24}" + "".join(
        f"{'':>18}{results[n][0] * 1e3:>18.1f}" for n in names))
    return "\n".join(lines)


def difference_table(results, top):
    """The operators with the largest self-time excess of ours over transformers."""
    ours, reference = results["ours"][1], results["transformers"][1]
    rows = []
    for op in set(ours) | set(reference):
        (oc, ot), (rc, rt) = ours.get(op, (0, 0.0)), reference.get(op, (0, 0.0))
        rows.append((ot - rt, op, oc, ot, rc, rt))
    rows.sort(reverse=True)
    lines = [f"{'operator':<40}{'ours n':>10}{'ours ms':>10}{'hf n':>10}{'hf ms':>10}{'excess ms':>11}"]
    for excess, op, oc, ot, rc, rt in rows[:top]:
        lines.append(f"{op:<40}{oc:>10.0f}{ot / 1e3:>10.1f}{rc:>10.0f}{rt / 1e3:>10.1f}"
                     f"{excess / 1e3:>11.1f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv)
    import keras

    if keras.backend.backend() != "torch":
        raise SystemExit("Run with KERAS_BACKEND=torch: this profiles the PyTorch backend.")
    common.set_threads()
    sides = training_sides(args) if args.case == "train" else inference_sides(args)
    for _ in range(args.warmup):
        for fn in sides.values():
            fn()
    results = {name: profile(fn, args.calls) for name, fn in sides.items()}
    print(f"torch profile, case {args.case}, B widths, depth {args.depth}, batch {args.batch}, "
          f"float32, per call (mean of {args.calls} profiled calls after {args.warmup} warm-up)\n")
    print(kind_table(results))
    print("\nlargest excess of ours over transformers (hf), by operator self time:\n")
    print(difference_table(results, args.top))


if __name__ == "__main__":
    main()
