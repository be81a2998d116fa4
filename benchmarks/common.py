"""Shared helpers of the benchmark scripts: the machine's matmul peak, interleaved
timing, one subprocess per Keras backend, FLOP counts and the result table.

Absolute times on shared machines are noise: every script times us and the
peers interleaved (round-robin) in one process and reports median ratios.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# B widths (the smoke test and `--tiny` shrink them).
WIDTHS = {"width": 768, "mlp": 3072, "heads": 12}
# `--tiny`: operators that cost microseconds, so that a call's time is the
# library's host (Python) time: what an accelerator waits for when the host
# cannot launch its kernels fast enough.
TINY_WIDTHS = {"width": 32, "mlp": 64, "heads": 2}
TEXT_LENGTH = 64
BACKENDS = ("jax", "tensorflow", "torch")


def timed(fn):
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns, repeats, warmup=1, pause=0.1):
    """`{name: fn}` → `{name: [seconds per round]}`, called round-robin so that
    the machine's load drifts hit every contestant alike; `warmup` rounds
    untimed. Each round starts one contestant later than the one before:
    who runs after whom moved a contestant's ratio by several percent on a CPU
    (caches, allocator state), so no one keeps one neighbour. A `pause`
    (seconds) before each call lets the previous runtime's worker threads
    stop spin-waiting (OpenMP, Eigen) instead of stealing the cores from the
    next contestant."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    names = list(fns)
    times = {name: [] for name in fns}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(pause)
            times[name].append(timed(fns[name]))
    return times


def median_ratio(numerators, denominators):
    """Median over rounds of `numerators[i] / denominators[i]`: ratios taken
    within a round cancel the load that round saw."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


PEAK_SIZE = 3072


def matmul_fn(repeats=3):
    """The fastest float32 GEMM available here (NumPy/BLAS, PyTorch, or the
    current Keras backend's matmul) as a zero-argument function computing one
    (PEAK_SIZE, PEAK_SIZE) @ (PEAK_SIZE, PEAK_SIZE) product on all threads;
    time it beside the contestants for the machine's peak (`PEAK_FLOP` per call)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    b = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    candidates = [lambda: a @ b]
    import torch

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    candidates.append(lambda: torch.mm(ta, tb))
    if "keras" in sys.modules:
        import keras

        ka, kb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
        candidates.append(lambda: keras.ops.convert_to_numpy(keras.ops.matmul(ka, kb)))
    for fn in candidates:
        fn()
    return min(candidates, key=lambda fn: min(timed(fn) for _ in range(repeats)))


PEAK_FLOP = 2 * PEAK_SIZE**3


def utilisation(flop, times, peak_times):
    """Median over rounds of (achieved FLOP/s) / (matmul FLOP/s of that round)."""
    return median_ratio([flop / t for t in times], [PEAK_FLOP / t for t in peak_times])


def transformers_widths():
    """`WIDTHS` as transformers config entries."""
    return dict(hidden_size=WIDTHS["width"], intermediate_size=WIDTHS["mlp"],
                num_attention_heads=WIDTHS["heads"])


def keras_widths(depth):
    """`WIDTHS` as keras-hub / our tower arguments."""
    return dict(hidden_dim=WIDTHS["width"], num_layers=depth, num_heads=WIDTHS["heads"],
                intermediate_dim=WIDTHS["mlp"])


def _tower(depth, **extra):
    """`WIDTHS` as a tower config of `keras_siglip2.flop_model`."""
    return dict(hidden_dim=WIDTHS["width"], intermediate_dim=WIDTHS["mlp"], num_layers=depth,
                **extra)


def vision_flops(patches, depth, patch_size=16, valid=None):
    """Forward matmul FLOPs of a fixed-resolution image tower for one image
    (`keras_siglip2.flop_model`). `valid`: real patches (NaFlex padding
    excluded, the useful work), default all."""
    from keras_siglip2 import flop_model

    # Any image_size marks a fixed-resolution tower (no NaFlex position resize).
    vision = _tower(depth, patch_size=patch_size, image_size=patch_size)
    return flop_model.image_tower_flops(vision, patches if valid is None else valid)


def text_flops(depth, length=TEXT_LENGTH):
    """Forward matmul FLOPs of a text tower for one text (blocks and head)."""
    from keras_siglip2 import flop_model

    text = _tower(depth, sequence_length=length, projection_dim=WIDTHS["width"])
    return flop_model.text_tower_flops(text)


def contest_rows(results, batch):
    """`{backend: {"times": {contestant: [s], "matmul": [s]}, "flops": F}}` →
    one row per (backend, contestant): median time and items/s, speed relative
    to transformers and keras-hub, the round's matmul peak and the share of it
    reached (`F` FLOPs per call). Ratios are medians of per-round values."""
    out = []
    for backend, r in results.items():
        times = dict(r["times"])
        peak = times.pop("matmul")
        for name, t in times.items():
            out.append({
                "backend": backend, "model": name, "seconds": statistics.median(t),
                "throughput": statistics.median(batch / x for x in t),
                "vs_transformers": median_ratio(times["transformers"], t),
                "vs_keras_hub": median_ratio(times["keras-hub"], t) if "keras-hub" in times
                else None,
                "peak": statistics.median(PEAK_FLOP / x / 1e9 for x in peak),
                "util": utilisation(r["flops"], t, peak),
            })
    return out


def run_backends(script, args, flags, backends):
    """Run `script --json` with `args`' values of `flags` (attribute names) once
    per Keras backend in a subprocess; `{backend: the JSON its last stdout line
    holds}` (failures reported and skipped)."""
    argv = []
    for flag in flags:
        value = getattr(args, flag)
        if value is True:
            argv.append("--" + flag.replace("_", "-"))
        elif value not in (None, False):
            argv += ["--" + flag.replace("_", "-"), str(value)]
    results = {}
    for backend in backends:
        command = [sys.executable, script, "--json", *argv]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            print(f"{backend} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def add_tiny_flag(parser):
    """`--tiny`: `TINY_WIDTHS` instead of B widths (see `use_widths`)."""
    parser.add_argument("--tiny", action="store_true",
                        help=f"widths {TINY_WIDTHS}: time each library's host overhead")


def use_widths(args):
    """Switch `WIDTHS` to `TINY_WIDTHS` when `args.tiny`; the widths' name for reports."""
    if args.tiny:
        WIDTHS.update(TINY_WIDTHS)
        return f"tiny widths (host overhead: {WIDTHS['width']} wide, MLP {WIDTHS['mlp']})"
    return "B widths" if WIDTHS["width"] == 768 else f"width {WIDTHS['width']}"


def format_table(rows, columns):
    """Rows (dicts) → a Markdown table of `columns` [(key, title, format)]."""
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("" if value is None else format(value, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def set_threads():
    """Quiet TensorFlow logging; PyTorch on every core (its default on some
    builds is one thread per physical core only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch

    torch.set_num_threads(os.cpu_count())
