"""Peak memory of converting a full-size So400m big_vision `.npz` to our preset.

Writes a synthetic checkpoint with the exact parameter names and shapes of
So400m/14 @ 384 (random values, ~4.5 GB float32) one array at a time, then
runs each measurement in a fresh subprocess and reports its peak resident
memory (VmHWM from /proc/self/status, else `ru_maxrss`) next to the model size:

  convert      keras_siglip2.presets.convert(npz, out_dir)  (load + save_to_preset)
  load         SigLIP2Backbone.from_preset(npz)
  random_init  SigLIP2Backbone.from_preset("so400m", load_weights=False), for scale
  imports      importing the package (TensorFlow, JAX, keras-hub): the floor

Usage: KERAS_BACKEND=jax python benchmarks/convert_memory.py [--dir /tmp/siglip2_mem]
       [--layout per_layer|stacked] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def big_vision_shapes(config):
    """Parameter name → shape of a big_vision two-tower SigLIP checkpoint."""
    v, t = config["vision"], config["text"]
    p, d = v["patch_size"], v["hidden_dim"]
    grid = v["image_size"] // p
    shapes = {
        "params/t": (1,),
        "params/b": (1,),
        "params/img/embedding/kernel": (p, p, 3, d),
        "params/img/embedding/bias": (d,),
        "params/img/pos_embedding": (1, grid * grid, d),
        "params/txt/Embed_0/embedding": (t["vocabulary_size"], t["hidden_dim"]),
        "params/txt/pos_embedding": (1, t["sequence_length"], t["hidden_dim"]),
        "params/txt/head/kernel": (t["hidden_dim"], t["projection_dim"]),
        "params/txt/head/bias": (t["projection_dim"],),
    }

    def block(prefix, width, heads, mlp):
        hd = width // heads
        out = {}
        for norm in ("LayerNorm_0", "LayerNorm_1"):
            out[f"{prefix}/{norm}/scale"] = (width,)
            out[f"{prefix}/{norm}/bias"] = (width,)
        for name in ("query", "key", "value"):
            out[f"{prefix}/MultiHeadDotProductAttention_0/{name}/kernel"] = (width, heads, hd)
            out[f"{prefix}/MultiHeadDotProductAttention_0/{name}/bias"] = (heads, hd)
        out[f"{prefix}/MultiHeadDotProductAttention_0/out/kernel"] = (heads, hd, width)
        out[f"{prefix}/MultiHeadDotProductAttention_0/out/bias"] = (width,)
        out[f"{prefix}/MlpBlock_0/Dense_0/kernel"] = (width, mlp)
        out[f"{prefix}/MlpBlock_0/Dense_0/bias"] = (mlp,)
        out[f"{prefix}/MlpBlock_0/Dense_1/kernel"] = (mlp, width)
        out[f"{prefix}/MlpBlock_0/Dense_1/bias"] = (width,)
        return out

    head = block("params/img/MAPHead_0", d, v["num_heads"], v["intermediate_dim"])
    head = {k: s for k, s in head.items() if "LayerNorm_1" not in k}
    shapes.update(head)
    shapes["params/img/MAPHead_0/probe"] = (1, 1, d)
    for tower, prefix in ((v, "params/img/Transformer"), (t, "params/txt/Encoder_0")):
        width = tower["hidden_dim"]
        shapes[f"{prefix}/encoder_norm/scale"] = (width,)
        shapes[f"{prefix}/encoder_norm/bias"] = (width,)
        for i in range(tower["num_layers"]):
            shapes.update(block(f"{prefix}/encoderblock_{i}", width, tower["num_heads"],
                                tower["intermediate_dim"]))
    return shapes


def write_checkpoint(path, config, layout):
    shapes = big_vision_shapes(config)
    if layout == "stacked":
        stacked = {}
        for name, shape in shapes.items():
            if "/encoderblock_" in name:
                prefix, rest = name.split("/encoderblock_", 1)
                index, tail = rest.split("/", 1)
                key = f"{prefix}/encoderblock/{tail}"
                depth = stacked.get(key, (0,))[0]
                stacked[key] = (max(depth, int(index) + 1), *shape)
        shapes = {k: s for k, s in shapes.items() if "/encoderblock_" not in k}
        shapes.update(stacked)
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, shape in shapes.items():
            array = (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
            if name.endswith("/scale"):
                array += 1.0
            with archive.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array)
            del array
    return sum(int(np.prod(s)) for s in shapes.values())


MEASURE = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.presets import convert
mode, npz, out = {mode!r}, {npz!r}, {out!r}
if mode == "imports":
    pass
elif mode == "convert":
    convert(npz, out, overwrite=True)
elif mode == "load":
    SigLIP2Backbone.from_preset(npz)
else:
    SigLIP2Backbone.from_preset("so400m", load_weights=False)
# VmHWM: this process's own peak (ru_maxrss can carry a parent's peak over exec).
with open("/proc/self/status") as f:
    hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")]
peak_kib = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(seconds=time.perf_counter() - start, peak_rss_bytes=peak_kib * 1024)))
"""


def measure(mode, npz, out):
    code = MEASURE.format(root=ROOT, mode=mode, npz=npz, out=out)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"{mode} failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/siglip2_mem")
    parser.add_argument("--layout", choices=["per_layer", "stacked"], default="per_layer")
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    parser.add_argument("--modes", default="imports,convert,load,random_init")
    args = parser.parse_args()

    from keras_siglip2 import configs

    os.makedirs(args.dir, exist_ok=True)
    npz = os.path.join(args.dir, f"so400m14_384_{args.layout}.npz")
    out = os.path.join(args.dir, "converted")
    config = configs.checkpoint_config("so400m")
    if not os.path.exists(npz):
        start = time.perf_counter()
        count = write_checkpoint(npz, config, args.layout)
        print(f"wrote {npz}: {count:,} parameters in {time.perf_counter() - start:.0f} s")
    model_bytes = configs.count_parameters(config) * 4
    gib = 1024**3
    print(f"backend {os.environ.get('KERAS_BACKEND', 'default')}, layout {args.layout}, "
          f"npz {os.path.getsize(npz) / gib:.2f} GiB, model (float32) {model_bytes / gib:.2f} GiB")
    floor = None
    for mode in args.modes.split(","):
        result = measure(mode, npz, out)
        peak = result["peak_rss_bytes"]
        if mode == "imports":
            floor = peak
            print(f"{mode:12s} peak RSS {peak / gib:6.2f} GiB, {result['seconds']:6.1f} s")
            continue
        above = "" if floor is None else f", above imports {(peak - floor) / model_bytes:4.2f}× model"
        print(f"{mode:12s} peak RSS {peak / gib:6.2f} GiB = {peak / model_bytes:4.2f}× model{above}, "
              f"{result['seconds']:6.1f} s")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
