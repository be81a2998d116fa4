"""Does `jit_compile=True` (Keras' `torch.compile` path) pay back on PyTorch?

Two cases at B widths (768 wide, 12 heads, MLP 3072), `--depth` layers, float32:
  train     the sigmoid training step, `SigLIP2(locca=False).train_on_batch`
            with the paper optimizer (as `train_step.py`)
  predict   the fixed-res B/16 image tower, `predict_on_batch` (as `encoders.py`)

The same model is built twice from the same weights, compiled with
`jit_compile=False` and `jit_compile=True`. Reported per mode: the first
call (compilation included), the steady time per call (median of
`--repeats` interleaved rounds after one warm-up), the speed against eager,
the largest difference from the eager result, and the break-even: how many
calls the compiled model needs before its extra first-call time is paid back
(extra first-call seconds / seconds saved per call; "never" when it is not
faster).

Usage:
    KERAS_BACKEND=torch python benchmarks/torch_compile.py --case train|predict
        [--depth 2] [--batch 8] [--repeats 5]
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import train_step  # noqa: E402

MODES = {"eager": False, "compiled": True}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("train", "predict"), required=True)
    parser.add_argument("--depth", type=int, default=2, help="layers per tower (B has 12)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args(argv)


def contestants(args):
    """`{mode: call}`, each call returning the result as a NumPy array."""
    import keras
    import torch
    from transformers import SiglipModel

    torch.manual_seed(0)
    state = {k: v.detach().numpy()
             for k, v in SiglipModel(train_step.reference_config(args)).state_dict().items()}
    images, token_ids = train_step.make_batch(args)
    calls = {}
    for mode, jit_compile in MODES.items():
        model, _ = train_step.our_model(args, state, full=False)
        if args.case == "train":
            model.compile(jit_compile=jit_compile)
            batch = {"images": images, "token_ids": token_ids}
            calls[mode] = (lambda m, b: lambda: m.train_on_batch(b, return_dict=True)["loss"])(
                model, batch)
        else:
            tower = model.backbone.vision_encoder
            tower.compile(jit_compile=jit_compile)
            calls[mode] = (lambda t: lambda: t.predict_on_batch({"images": images})["pooled"])(
                tower)
    return {mode: (lambda f: lambda: keras.ops.convert_to_numpy(f()))(f)
            for mode, f in calls.items()}


def measure(args):
    import numpy as np

    common.set_threads()
    calls = contestants(args)
    first, results = {}, {}
    for mode, call in calls.items():
        first[mode] = common.timed(lambda: results.setdefault(mode, call()))
    times = common.interleaved(calls, args.repeats, warmup=1)
    eager = statistics.median(times["eager"])
    rows = []
    for mode in MODES:
        steady = statistics.median(times[mode])
        saved = eager - steady
        extra = first[mode] - first["eager"]
        rows.append({
            "case": args.case, "mode": mode, "first": first[mode], "steady": steady,
            "speed": common.median_ratio(times["eager"], times[mode]),
            "difference": float(np.max(np.abs(results[mode] - results["eager"]))),
            "break_even": "—" if mode == "eager" else
            (f"{extra / saved:.0f} calls" if saved > 0 else "never"),
        })
    return rows


COLUMNS = [("case", "case", ""), ("mode", "mode", ""), ("first", "first call s", ".1f"),
           ("steady", "steady s/call", ".3f"), ("speed", "vs eager", ".2f"),
           ("difference", "max |Δ| vs eager", ".1e"), ("break_even", "break-even", "")]


def main(argv=None):
    args = parse(argv)
    rows = measure(args)
    print(f"PyTorch jit_compile, case {args.case}, B widths, depth {args.depth}, batch "
          f"{args.batch}, float32; steady = median of {args.repeats} interleaved rounds.")
    print()
    print(common.format_table(rows, COLUMNS))
    return rows


if __name__ == "__main__":
    main()
