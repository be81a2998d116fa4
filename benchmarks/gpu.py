"""Accelerator benchmark: training steps and image-tower inference, ours (JAX,
`mixed_bfloat16`) against transformers (PyTorch, bf16, `sdpa` attention) on
the same device, each contestant in its own process (JAX preallocates the
device; PyTorch caches). Synthetic data lives on the device before timing.

Rows (`--rows`, default all):

| row | workload | transformers contestant |
|---|---|---|
| `train-b16` | B/16@224 sigmoid step, batch 256 | `SiglipModel(return_loss=True)`, bf16 autocast, fused AdamW, clip 1 |
| `train-so400m` | So400m/14@224 sigmoid step, batch 128 | same |
| `train-naflex` | B/16 NaFlex, 256 patches (half the images 128), batch 256 | `Siglip2Model(return_loss=True)`, same |
| `train-full` | B/16@224, all five losses, batch 256, remat none / mlp / block | none (no peer trains the recipe) |
| `infer-so400m` | So400m/14@384 image tower forward, batch 128 | `SiglipVisionModel`, bf16 weights |
| `infer-naflex` | B/16 NaFlex image tower, 256 patches, batch 256 | `Siglip2VisionModel`, bf16 weights |

Per contestant: median seconds of `--steps` steps after `--warmup` (the first
step's time is reported as compile time), peak device memory, and model FLOPs
(`keras_siglip2.flop_model`; the same count for both contestants) as MFU
against the bf16 matmul peak measured in the same process and against the
device's spec peak (`SPEC_PEAKS`).

    python benchmarks/gpu.py                       # every row (an H100/H200: ~10 min)
    python benchmarks/gpu.py --rows train-b16 infer-so400m
    python benchmarks/gpu.py --smoke               # toy sizes on CPU, seconds per row

The GPU machine has no TensorFlow: this script, our towers, `SigLIP2` and its
training step import without it (run with KERAS_BACKEND=jax). Results go into
benchmarks/RESULTS.md with the GPU's name.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

# Dense bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s.
SPEC_PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}

ROWS = {
    "train-b16": dict(kind="train", size="b16", batch=256, recipe="sigmoid", peer=True),
    "train-so400m": dict(kind="train", size="so400m", batch=128, recipe="sigmoid", peer=True),
    "train-naflex": dict(kind="train", size="b16-naflex", batch=256, recipe="sigmoid", peer=True),
    "train-full": dict(kind="train", size="b16", batch=256, recipe="full", peer=False),
    "infer-so400m": dict(kind="infer", size="so400m-384", batch=128, peer=True),
    "infer-naflex": dict(kind="infer", size="b16-naflex", batch=256, peer=True),
}
FULL_REMATS = ("none", "mlp", "block")
SMOKE = dict(batch=4, depth=1, vocabulary=512, steps=2, warmup=1)


# ------------------------------------------------------------------ helpers
def _workload(row, args):
    """`(config, batch_size)` of a row at the run's sizes."""
    spec = ROWS[row]
    config = workloads.backbone_config(
        spec["size"], depth=args.depth, vocabulary=args.vocabulary, toy=args.smoke
    )
    return config, args.batch or spec["batch"]


def _batch(row, config, batch_size, smoke):
    """`(synthetic batch, locca, self-supervised settings)` of a row."""
    recipe = ROWS[row].get("recipe", "sigmoid")
    locca, self_supervised = workloads.recipe_settings(config, recipe, toy=smoke)
    batch = workloads.synthetic_batch(config, batch_size, locca, self_supervised)
    return batch, locca, self_supervised


def _flops(row, config, batch_size, batch, locca, self_supervised, remat=None):
    """Model FLOPs of one step or call of `row` (`keras_siglip2.flop_model`)."""
    from keras_siglip2 import flop_model

    if ROWS[row]["kind"] == "infer":
        return flop_model.encoder_forward_flops(config, batch_size)
    return flop_model.training_step_flops(
        config, batch_size, locca=locca,
        vocabulary_size=config["text"]["vocabulary_size"] + workloads.COORDINATE_BINS,
        scored_tokens=workloads.scored_tokens(batch) if locca else None,
        self_supervised=self_supervised, remat=remat,
    )["total"]


def _time_steps(step, steps, warmup):
    """`(first step seconds, [seconds of each timed step])`; `step()` must block."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, times


# ---------------------------------------------------------------- contestants
def run_ours(row, args, remat=None):
    """One row with our model on JAX: timings, peak memory, FLOPs."""
    import jax
    import keras

    keras.config.set_dtype_policy("float32" if args.smoke else "mixed_bfloat16")
    config, batch_size = _workload(row, args)
    batch, locca, self_supervised = _batch(row, config, batch_size, args.smoke)
    if ROWS[row]["kind"] == "train":
        model = workloads.build_model(config, ROWS[row]["recipe"], remat=remat, toy=args.smoke)
        data = (jax.device_put(batch),)
        step_fn, state = workloads.jax_train_step(model)
        holder = {"state": state}

        def step():
            logs, holder["state"] = step_fn(holder["state"], data)
            jax.block_until_ready(logs["loss"])

    else:
        from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder

        if not args.smoke:
            keras.config.set_dtype_policy("bfloat16")
        tower = SigLIP2VisionEncoder(**config["vision"])
        images = jax.device_put({k: v for k, v in batch.items() if k in tower.input})
        values = ([v.value for v in tower.trainable_variables],
                  [v.value for v in tower.non_trainable_variables])
        forward = jax.jit(lambda values, x: tower.stateless_call(*values, x)[0]["pooled"])

        def step():
            jax.block_until_ready(forward(values, images))

    flops = _flops(row, config, batch_size, batch, locca, self_supervised, remat)
    first, times = _time_steps(step, args.steps, args.warmup)
    stats = jax.devices()[0].memory_stats() or {}
    return dict(first=first, times=times, flops=flops, peak_memory=stats.get("peak_bytes_in_use"),
                device=jax.devices()[0].device_kind, matmul=_jax_matmul_peak(args.smoke))


def transformers_config(config, naflex):
    """Our backbone config → a transformers `SiglipConfig` / `Siglip2Config`."""
    from transformers import Siglip2Config, SiglipConfig

    def tower(part):
        return dict(hidden_size=part["hidden_dim"], intermediate_size=part["intermediate_dim"],
                    num_hidden_layers=part["num_layers"], num_attention_heads=part["num_heads"],
                    layer_norm_eps=1e-6)

    vision, text = config["vision"], config["text"]
    text_config = dict(tower(text), vocab_size=text["vocabulary_size"],
                       max_position_embeddings=text["sequence_length"],
                       projection_size=text["projection_dim"])
    vision_config = dict(tower(vision), patch_size=vision["patch_size"])
    if naflex:
        vision_config["num_patches"] = vision["position_grid_size"] ** 2
        return Siglip2Config(text_config=text_config, vision_config=vision_config)
    vision_config["image_size"] = vision["image_size"]
    return SiglipConfig(text_config=text_config, vision_config=vision_config)


def run_transformers(row, args):
    """One row with the transformers model on PyTorch."""
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    config, batch_size = _workload(row, args)
    batch, locca, self_supervised = _batch(row, config, batch_size, args.smoke)
    naflex = config["vision"].get("image_size") is None
    reference = transformers_config(config, naflex)
    reference._attn_implementation = "sdpa"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if naflex:
        inputs = dict(pixel_values=torch.from_numpy(batch["patches"]),
                      pixel_attention_mask=torch.from_numpy(batch["patch_mask"].astype("int64")),
                      spatial_shapes=torch.from_numpy(batch["spatial_shapes"].astype("int64")))
    else:
        inputs = dict(pixel_values=torch.from_numpy(batch["images"].transpose(0, 3, 1, 2).copy()))
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if ROWS[row]["kind"] == "train":
        classes = transformers.Siglip2Model if naflex else transformers.SiglipModel
        model = classes(reference).to(device).train()
        inputs["input_ids"] = torch.from_numpy(batch["token_ids"].astype("int64")).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4,
                                      fused=device == "cuda")

        def step():
            with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
                loss = model(**inputs, return_loss=True).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _synchronize(torch, device)
    else:
        classes = transformers.Siglip2VisionModel if naflex else transformers.SiglipVisionModel
        model = classes(reference.vision_config).to(device=device, dtype=dtype).eval()
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)

        def step():
            with torch.no_grad():
                model(**inputs)
            _synchronize(torch, device)

    first, times = _time_steps(step, args.steps, args.warmup)
    flops = _flops(row, config, batch_size, batch, locca, self_supervised)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return dict(first=first, times=times, flops=flops, peak_memory=peak, device=name,
                matmul=_torch_matmul_peak(torch, device))


def _synchronize(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def _matmul_size(smoke):
    return 512 if smoke else 8192


def _jax_matmul_peak(smoke):
    """FLOP/s of a bf16 (float32 in smoke mode) square matmul, best of 5."""
    import jax
    import jax.numpy as jnp

    n = _matmul_size(smoke)
    dtype = jnp.float32 if smoke else jnp.bfloat16
    a = jnp.ones((n, n), dtype)
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(a))
    best = min(_seconds(lambda: jax.block_until_ready(matmul(a))) for _ in range(5))
    return 2 * n**3 / best


def _torch_matmul_peak(torch, device):
    n = _matmul_size(device != "cuda")
    a = torch.ones((n, n), dtype=torch.bfloat16 if device == "cuda" else torch.float32,
                   device=device)
    a @ a
    _synchronize(torch, device)

    def once():
        a @ a
        _synchronize(torch, device)

    return 2 * n**3 / min(_seconds(once) for _ in range(5))


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- orchestration
def contestants(row, remats=FULL_REMATS):
    """`[(name, --contestant value)]` of a row."""
    if ROWS[row].get("recipe") == "full":
        return [(f"ours remat={r}", f"ours:{r}") for r in remats]
    names = [("ours", "ours:none")]
    if ROWS[row]["peer"]:
        names.append(("transformers", "transformers"))
    return names


def run_child(row, contestant, args):
    """Run one contestant of one row in a fresh process → its JSON result."""
    command = [sys.executable, os.path.abspath(__file__), "--child", row, contestant,
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    for flag in ("batch", "depth", "vocabulary"):
        if getattr(args, flag):
            command += [f"--{flag}", str(getattr(args, flag))]
    if args.smoke:
        command.append("--smoke")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr or done.stdout)[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(results, device_name):
    """Per-contestant numbers → table rows with ratios and MFU."""
    spec = next((peak for name, peak in SPEC_PEAKS.items() if name in device_name), None)
    rows = []
    for row, by_contestant in results.items():
        peer = by_contestant.get("transformers")
        peer_time = statistics.median(peer["times"]) if peer and "times" in peer else None
        for name, r in by_contestant.items():
            if "error" in r:
                rows.append(dict(row=row, contestant=name, error=r["error"].splitlines()[-1]))
                continue
            seconds = statistics.median(r["times"])
            achieved = r["flops"] / seconds
            rows.append(dict(
                row=row, contestant=name, seconds=seconds,
                speed=peer_time / seconds if peer_time else None,
                mfu_measured=achieved / r["matmul"],
                mfu_spec=achieved / (spec * 1e12) if spec else None,
                memory=r["peak_memory"] / 2**30 if r["peak_memory"] else None,
                first=r["first"], tflop=r["flops"] / 1e12,
            ))
    return rows


def format_rows(rows, device_name, matmul):
    spec = next((peak for name, peak in SPEC_PEAKS.items() if name in device_name), None)
    lines = [f"Device: {device_name}; bf16 matmul measured {matmul / 1e12:.3g} TFLOP/s"
             + (f", spec {spec:.0f}" if spec else ", no spec peak known"),
             "",
             "| row | contestant | s/step | vs transformers | MFU (measured) | MFU (spec) "
             "| peak GiB | first step s | TFLOP/step |",
             "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['row']} | {r['contestant']} | failed: {r['error']} |||||||")
            continue
        lines.append(
            f"| {r['row']} | {r['contestant']} | {r['seconds']:.4f} | {fmt(r['speed'], '.2f')} "
            f"| {r['mfu_measured']:.1%} | {fmt(r['mfu_spec'], '.1%')} | {fmt(r['memory'], '.1f')} "
            f"| {r['first']:.1f} | {r['tflop']:.3g} |"
        )
    return "\n".join(lines)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps, the first included")
    parser.add_argument("--batch", type=int, help="override every row's batch size")
    parser.add_argument("--depth", type=int, help="layers per tower (default: the size's)")
    parser.add_argument("--vocabulary", type=int, help="text vocabulary (default 256,000)")
    parser.add_argument("--remat", nargs="+", default=list(FULL_REMATS), choices=FULL_REMATS,
                        help="remat modes of the five-loss row")
    parser.add_argument("--smoke", action="store_true", help="toy sizes on any device")
    parser.add_argument("--child", nargs=2, metavar=("ROW", "CONTESTANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            if key in ("steps", "warmup") or getattr(args, key) is None:
                setattr(args, key, value)
    return args


def main(argv=None):
    args = parse(argv)
    if args.child:
        row, contestant = args.child
        name, _, remat = contestant.partition(":")
        if name == "ours":
            result = run_ours(row, args, None if remat in ("", "none") else remat)
        else:
            result = run_transformers(row, args)
        print(json.dumps(result))
        return result
    results, device_name, matmul = {}, "unknown", 0.0
    for row in args.rows:
        results[row] = {}
        for name, contestant in contestants(row, args.remat):
            results[row][name] = result = run_child(row, contestant, args)
            if "error" in result:
                print(f"{row} / {name} failed:\n{result['error']}", file=sys.stderr)
            else:
                device_name = result["device"] if name.startswith("ours") else device_name
                matmul = max(matmul, result["matmul"])
                print(f"{row:14s} {name:18s} {statistics.median(result['times']):.4f} s",
                      flush=True)
    rows = summarise(results, device_name)
    print()
    print(format_rows(rows, device_name, matmul))
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
