"""Training-step throughput at B widths (768 wide, 12 heads, MLP 3072), float32,
same batch, same depth, same initial weights (converted with our transformers
converter), against both peers:

  ours sigmoid      `SigLIP2(backbone, locca=False)`, sigmoid loss, paper AdamW
                    (lr 1e-3, decoupled decay on kernels, global-norm clip 1)
  ours full         `SigLIP2` with the LocCa decoder (three decoder tasks per
                    example, chunked vocabulary cross entropy) and, when the
                    installed `SigLIP2` has them, self-distillation + masked
                    prediction (`self_supervised=True`, switched on from step 0)
  transformers      `SiglipModel(return_loss=True)` + `torch.optim.AdamW` (same
                    decay on kernels only, clip 1), eager PyTorch
  keras-hub         `SigLIPBackbone` + `SigLIPLoss` + Keras AdamW (clip 1), `train_on_batch`

Each step is a `train_on_batch` (the step `fit` runs). All contestants and a
float32 GEMM (the machine's matmul peak) alternate round by round in one
process; ratios and utilisation are medians of per-round values. Utilisation:
3 × forward matmul FLOPs (forward + backward) of both towers (projections,
MLP, attention scores; embeddings, loss ignored) / step time / peak. For
"ours full" the same sigmoid-tower FLOPs are used (the decoder and
self-supervised passes are extra work not counted: its utilisation is a
lower bound).

`--tiny` shrinks the widths until the operators cost microseconds: the step
times are then each library's host overhead per step.

Usage:
    python benchmarks/train_step.py [--depth 2] [--batch 8] [--image-size 224]
        [--vocab 32000 | --full-vocab] [--repeats 5] [--warmup 2] [--no-full] [--tiny]
        [--backends jax,tensorflow,torch]

Absolute times on shared machines are noise; read the ratio columns.
"""

import argparse
import inspect
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

FULL_VOCAB = 256_000


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=2, help="layers per tower (B has 12)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--full-vocab", action="store_true", help=f"vocab {FULL_VOCAB:,}")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds (compilation)")
    parser.add_argument("--no-full", action="store_true", help="skip the full-recipe model")
    parser.add_argument("--backends", default=",".join(common.BACKENDS),
                        help="comma-separated; each runs in its own subprocess")
    common.add_tiny_flag(parser)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.widths = common.use_widths(args)
    if args.full_vocab:
        args.vocab = FULL_VOCAB
    return args


def reference_config(args):
    from transformers import SiglipConfig

    text = dict(common.transformers_widths(), num_hidden_layers=args.depth, vocab_size=args.vocab,
                max_position_embeddings=common.TEXT_LENGTH)
    vision = dict(common.transformers_widths(), num_hidden_layers=args.depth, patch_size=16,
                  image_size=args.image_size)
    return SiglipConfig(text_config=text, vision_config=vision)


def make_batch(args):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch, args.image_size, args.image_size, 3))
    token_ids = rng.integers(2, args.vocab, (args.batch, common.TEXT_LENGTH))
    token_ids[:, -8:] = 0  # right padding, as the tokenizer makes
    token_ids[:, -9] = 1  # EOS
    return images.astype("float32"), token_ids.astype("int32")


def locca_batch(args, model, rng):
    """Synthetic decoder sequences of the three LocCa tasks, half the
    captioning examples in parallel-prediction mode."""
    length = model.decoder.sequence_length
    vocabulary = args.vocab + model.num_coordinate_bins
    batch = {}
    for task in ("captioning", "referring", "grounded"):
        batch[f"{task}_inputs"] = rng.integers(2, vocabulary, (args.batch, length)).astype("int32")
        batch[f"{task}_targets"] = rng.integers(2, vocabulary, (args.batch, length)).astype("int32")
        weights = np.ones((args.batch, length), "float32")
        weights[:, length // 2:] = 0.0  # padding
        batch[f"{task}_weights"] = weights
    batch["captioning_parallel"] = np.arange(args.batch) % 2 == 0
    return batch


def self_supervised_batch(args, model, rng):
    """Local crops `(B, V, r, r, 3)` and a 50% patch-drop mask `(B, N)`."""
    settings = model.self_supervised
    size, views = settings["local_view_size"], settings["num_local_views"]
    patches = (args.image_size // 16) ** 2
    return {
        "local_images": rng.uniform(-1, 1, (args.batch, views, size, size, 3)).astype("float32"),
        "patch_drop_mask": rng.uniform(size=(args.batch, patches)) < settings["mask_ratio"],
    }


def our_model(args, hf_state, full):
    """Our `SigLIP2` with the reference weights, compiled with the paper optimiser;
    `full`: LocCa decoder (+ self-supervision when available)."""
    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.models.siglip2 import SigLIP2
    from keras_siglip2.presets.huggingface import config_from_transformers, load_transformers_weights

    backbone = SigLIP2Backbone.from_config(config_from_transformers(reference_config(args).to_dict()))
    load_transformers_weights(backbone, hf_state.__getitem__)
    options, compile_options = {}, {}
    self_supervised = full and "self_supervised" in inspect.signature(SigLIP2).parameters
    if self_supervised:
        options["self_supervised"] = True
    if "self_supervised_start" in inspect.signature(SigLIP2.compile).parameters:
        compile_options["self_supervised_start"] = 0  # on from the first step
    model = SigLIP2(backbone, locca=full, **options)
    model.compile(**compile_options)
    return model, self_supervised


def step_fn(model, batch, y=None):
    """One `train_on_batch`, returning the loss as a float."""
    def step():
        logs = model.train_on_batch(batch, y, return_dict=True)
        return float(logs["loss"])
    return step


def reference_step(model, images, token_ids):
    import torch

    # As our paper optimiser: decay 1e-4 per step on kernels only, not scaled by
    # the learning rate (torch multiplies weight_decay by lr).
    def is_kernel(name, p):
        return p.ndim >= 2 and "embedding" not in name
    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in params if is_kernel(n, p)], "weight_decay": 1e-4 / 1e-3},
         {"params": [p for n, p in params if not is_kernel(n, p)], "weight_decay": 0.0}],
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
    return step


def keras_hub_step(args, images, token_ids):
    """keras-hub `SigLIPBackbone` trained with its `SigLIPLoss` (random init)."""
    import keras
    import keras_hub
    from keras_hub.src.models.siglip.siglip_loss import SigLIPLoss

    widths = common.keras_widths(args.depth)
    backbone = keras_hub.models.SigLIPBackbone(
        keras_hub.models.SigLIPVisionEncoder(
            patch_size=16, image_shape=(args.image_size, args.image_size, 3), **widths),
        keras_hub.models.SigLIPTextEncoder(
            vocabulary_size=args.vocab, embedding_dim=widths["hidden_dim"],
            max_sequence_length=common.TEXT_LENGTH, **widths),
    )
    backbone.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1, global_clipnorm=1.0),
        # Outputs (image→text, text→image logits) are both named siglip_head:
        # a list; the loss counts once, as ours.
        loss=[SigLIPLoss(), SigLIPLoss()], loss_weights=[1.0, 0.0],
    )
    labels = 2 * np.eye(args.batch, dtype="float32") - 1
    return step_fn(backbone, {"images": images, "token_ids": token_ids}, [labels, labels.T])


def step_flops(args):
    """3 × forward matmul FLOPs of both towers for one batch."""
    vision = common.vision_flops((args.image_size // 16) ** 2, args.depth)
    return 3 * args.batch * (vision + common.text_flops(args.depth))


def run_one(args):
    import keras
    import torch
    from transformers import SiglipModel

    common.set_threads()
    torch.manual_seed(0)
    hf_model = SiglipModel(reference_config(args))
    hf_state = {k: v.detach().numpy().copy() for k, v in hf_model.state_dict().items()}
    images, token_ids = make_batch(args)
    batch = {"images": images, "token_ids": token_ids}
    sigmoid_model, _ = our_model(args, hf_state, full=False)
    fns = {"ours sigmoid": step_fn(sigmoid_model, batch)}
    self_supervised = False
    if not args.no_full:
        full_model, self_supervised = our_model(args, hf_state, full=True)
        rng = np.random.default_rng(1)
        full_batch = {**batch, **locca_batch(args, full_model, rng)}
        if self_supervised:
            full_batch.update(self_supervised_batch(args, full_model, rng))
        fns["ours full"] = step_fn(full_model, full_batch)
    del hf_state
    # Ours first: both start from the same weights, so the first losses agree.
    first_loss = fns["ours sigmoid"]()
    fns["transformers"] = reference_step(hf_model, images, token_ids)
    reference_loss = fns["transformers"]()
    fns["keras-hub"] = keras_hub_step(args, images, token_ids)
    fns["matmul"] = common.matmul_fn()
    times = common.interleaved(fns, args.repeats, args.warmup)
    return {"times": times, "loss": first_loss, "reference_loss": reference_loss,
            "params": sigmoid_model.count_params(), "self_supervised": self_supervised,
            "flops": step_flops(args), "backend": keras.backend.backend()}


COLUMNS = [("backend", "backend", ""), ("model", "model", ""), ("seconds", "step s", ".3f"),
           ("throughput", "examples/s", ".2f"), ("vs_transformers", "vs transformers", ".2f"),
           ("vs_keras_hub", "vs keras-hub", ".2f"), ("peak", "matmul peak GFLOP/s", ".1f"),
           ("util", "% of peak", ".1%")]


def report(results, args):
    first = next(iter(results.values()), None)
    full = "not run"
    if first and not args.no_full:
        full = ("LocCa decoder + self-distillation + masked prediction" if first["self_supervised"]
                else "LocCa decoder only (this SigLIP2 has no self-supervised losses)")
    lines = [
        f"SigLIP2 training step, {args.widths}, depth {args.depth}, image {args.image_size}, batch "
        f"{args.batch}, text {common.TEXT_LENGTH}, vocab {args.vocab:,}, float32; median of "
        f"{args.repeats} interleaved rounds after {args.warmup} warm-up. 'ours full': {full}.",
        "",
        common.format_table(common.contest_rows(results, args.batch), COLUMNS),
    ]
    if first:
        lines += ["", f"params (ours sigmoid): {first['params']:,}; "
                  f"{first['flops'] / 1e9:.1f} GFLOP per step counted. First-step loss, same "
                  "weights and batch: " + ", ".join(
                      f"{b} ours {r['loss']:.5f} / transformers {r['reference_loss']:.5f}"
                      for b, r in results.items())]
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv)
    if args.json:
        print(json.dumps(run_one(args)))
        return
    flags = ("depth", "batch", "image_size", "vocab", "repeats", "warmup", "no_full", "tiny")
    results = common.run_backends(os.path.abspath(__file__), args, flags, args.backends.split(","))
    print(report(results, args))


if __name__ == "__main__":
    main()
