"""Training-step throughput: our `SigLIP2` (sigmoid loss, paper AdamW + clipping)
against transformers `SiglipModel(return_loss=True)` + `torch.optim.AdamW`, on the
same batch, same widths (B: 768 wide, 12 heads, MLP 3072), same depth and the
same initial weights (converted with our transformers converter).

Both run in one process, under the current KERAS_BACKEND; the machine's float32
matmul peak is measured in the same run (a NumPy SGEMM), and the FLOP
utilisation is estimated with the usual 6·P·T approximation (P: non-embedding
weights applied to every token of a tower, T: its tokens per step. Counted:
patch embedding, encoder blocks, the MAP head's key/value projections; ignored:
attention scores, embeddings (lookups), the pooled-token heads and the loss).

Usage:
    KERAS_BACKEND=jax python benchmarks/train_step.py [--depth 2] [--batch 8]
        [--image-size 224] [--vocab 32000 | --full-vocab] [--steps 5] [--warmup 2]
    python benchmarks/train_step.py --backends jax,tensorflow,torch   # one process each

Absolute times on shared machines are noise; read the ratio column.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FULL_VOCAB = 256_000
B_WIDTHS = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12)
TEXT_LENGTH = 64


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=2, help="layers per tower (B has 12)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--full-vocab", action="store_true", help=f"vocab {FULL_VOCAB:,}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated; each runs in its own subprocess")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.full_vocab:
        args.vocab = FULL_VOCAB
    return args


def matmul_peak(n=2048, repeats=5):
    """Best float32 GEMM rate of this machine (NumPy/BLAS, all threads), FLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reference_config(args):
    from transformers import SiglipConfig

    text = dict(B_WIDTHS, num_hidden_layers=args.depth, vocab_size=args.vocab,
                max_position_embeddings=TEXT_LENGTH)
    vision = dict(B_WIDTHS, num_hidden_layers=args.depth, patch_size=16,
                  image_size=args.image_size)
    return SiglipConfig(text_config=text, vision_config=vision)


def make_batch(args):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch, args.image_size, args.image_size, 3))
    token_ids = rng.integers(2, args.vocab, (args.batch, TEXT_LENGTH))
    token_ids[:, -8:] = 0  # right padding, as the tokenizer makes
    token_ids[:, -9] = 1  # EOS
    return images.astype("float32"), token_ids.astype("int32")


def time_steps(step, args):
    """(median step seconds, loss of the very first step, before any update)."""
    first = step()
    for _ in range(args.warmup - 1):
        step()
    times = [_timed(step) for _ in range(args.steps)]
    return statistics.median(times), first


def tokenwise_params(args):
    """Weights each token of a tower goes through (see the module docstring)."""
    d, m = B_WIDTHS["hidden_size"], B_WIDTHS["intermediate_size"]
    block = 4 * d * d + 2 * d * m
    vision = 16 * 16 * 3 * d + args.depth * block + 2 * d * d  # + MAP key/value
    text = args.depth * block
    return vision, text


def ours(args, hf_state, images, token_ids):
    import keras

    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.models.siglip2 import SigLIP2
    from keras_siglip2.presets.huggingface import config_from_transformers, load_transformers_weights

    config = config_from_transformers(reference_config(args).to_dict())
    backbone = SigLIP2Backbone.from_config(config)
    load_transformers_weights(backbone, hf_state.__getitem__)
    model = SigLIP2(backbone, locca=False)
    model.compile()  # paper AdamW: lr 1e-3, decoupled decay on kernels, clip 1
    batch = {"images": images, "token_ids": token_ids}

    def step():
        return float(model.train_on_batch(batch, return_dict=True)["loss"])

    seconds, loss = time_steps(step, args)
    return {"seconds": seconds, "loss": loss, "params": model.count_params(),
            "backend": keras.backend.backend()}


def reference(args, model, images, token_ids):
    import torch

    # As our paper optimiser: decay 1e-4 per step on kernels only, not scaled by
    # the learning rate (torch multiplies weight_decay by lr).
    kernels = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    others = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": kernels, "weight_decay": 1e-4 / 1e-3}, {"params": others, "weight_decay": 0.0}],
        lr=1e-3,
    )
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    ids = torch.from_numpy(token_ids).long()
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    seconds, loss = time_steps(step, args)
    return {"seconds": seconds, "loss": loss}


def run_one(args):
    import torch
    from transformers import SiglipModel

    torch.manual_seed(0)
    hf_model = SiglipModel(reference_config(args))
    hf_state = {k: v.detach().numpy().copy() for k, v in hf_model.state_dict().items()}
    images, token_ids = make_batch(args)
    # Ours first: both start from the same weights, so the first losses agree.
    result = {"ours": ours(args, hf_state, images, token_ids)}
    result["transformers"] = reference(args, hf_model, images, token_ids)
    result["peak_flops"] = matmul_peak()
    patches = (args.image_size // 16) ** 2
    vision, text = tokenwise_params(args)
    result["flops_per_step"] = 6 * args.batch * (vision * patches + text * TEXT_LENGTH)
    return result


def table(results, args):
    lines = [
        f"SigLIP2 training step, B widths (768, 12 heads), depth {args.depth}, image "
        f"{args.image_size}, batch {args.batch}, text {TEXT_LENGTH}, vocab {args.vocab:,}, "
        f"sigmoid loss only; median of {args.steps} steps after {args.warmup} warm-up.",
        "FLOP utilisation: 6·P·T estimate (P weights applied to every token of a tower, "
        "T its tokens; attention scores ignored) / float32 NumPy matmul peak measured "
        "in the same process.",
        "",
        f"{'backend':<11} {'model':<13} {'step s':>8} {'ex/s':>8} {'vs transformers':>16} "
        f"{'GFLOP/s':>8} {'peak':>8} {'util':>6} {'loss@0':>9}",
    ]
    for backend, r in results.items():
        peak = r["peak_flops"]
        reference_seconds = r["transformers"]["seconds"]
        for name in ("ours", "transformers"):
            seconds = r[name]["seconds"]
            rate = r["flops_per_step"] / seconds
            lines.append(
                f"{backend:<11} {name:<13} {seconds:>8.3f} {args.batch / seconds:>8.2f} "
                f"{reference_seconds / seconds:>15.2f}x {rate / 1e9:>8.1f} {peak / 1e9:>8.1f} "
                f"{rate / peak:>6.1%} {r[name]['loss']:>9.5f}"
            )
    if results:
        first = next(iter(results.values()))
        lines += [
            "",
            f"params: {first['ours']['params']:,}; est. {first['flops_per_step'] / 1e9:.1f} GFLOP "
            "per step; 'vs transformers' > 1: ours is faster; loss@0: first-step loss "
            "(same weights and batch, so the two should agree).",
        ]
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv)
    if args.backends:
        results = {}
        for backend in args.backends.split(","):
            command = [sys.executable, os.path.abspath(__file__), "--json"]
            for flag in ("depth", "batch", "image_size", "vocab", "steps", "warmup"):
                command += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                print(f"{backend} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        print(table(results, args))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = run_one(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(table({result["ours"]["backend"]: result}, args))


if __name__ == "__main__":
    main()
