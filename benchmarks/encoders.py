"""Inference throughput of the towers against transformers and keras-hub, at B
widths (768 wide, 12 heads, MLP 3072), float32, same inputs, same weights
(converted with our transformers converter; outputs compared).

Tasks:
  image   fixed-res B/16 @ 224: our `SigLIP2VisionEncoder` vs transformers
          `SiglipModel.vision_model` and keras-hub `SigLIPVisionEncoder`.
  naflex  NaFlex B/16 at N patches, a batch of mixed aspect ratios (the grids
          our NaFlex sizing gives 8 common photo shapes): ours vs transformers
          `Siglip2Model.vision_model`.
  text    text tower, length 64: ours vs transformers `SiglipModel.text_model`
          and keras-hub `SigLIPTextEncoder`.

Ours and keras-hub run `predict_on_batch` (the compiled predict path Keras
gives every model: XLA on JAX, tf.function on TensorFlow, eager on PyTorch);
transformers runs its module under `torch.inference_mode`. Every contestant is
timed interleaved with the others in one process (median of `--repeats`
rounds after `--warmup`); the matmul peak is measured in the same process.
Utilisation = matmul FLOPs of the forward pass (projections, MLP, attention
scores; NaFlex: real patches only) / time / peak.

`--tiny` shrinks the widths until the operators cost microseconds: the
times are then each library's host overhead per call.

Usage:
    python benchmarks/encoders.py --task image [--depth 12] [--batch 8] [--tiny]
        [--backends jax,tensorflow,torch] [--repeats 5] [--warmup 2]
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# Photo sizes (H, W) whose NaFlex grids make the mixed-aspect batch.
PHOTO_SIZES = [(480, 640), (640, 480), (1080, 1920), (1920, 1080), (512, 512),
               (300, 900), (900, 300), (375, 500)]
DEFAULT_BATCH = {"image": 8, "naflex": 8, "text": 32}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("image", "naflex", "text"), required=True)
    parser.add_argument("--depth", type=int, default=12, help="layers per tower (B has 12)")
    parser.add_argument("--batch", type=int, default=None, help="image 8, naflex 8, text 32")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patches", type=int, default=256, help="NaFlex sequence length N")
    parser.add_argument("--vocab", type=int, default=32_000,
                        help="text vocabulary (a lookup: its size does not change the cost)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backends", default=",".join(common.BACKENDS))
    common.add_tiny_flag(parser)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.widths = common.use_widths(args)
    args.batch = args.batch or DEFAULT_BATCH[args.task]
    return args


def naflex_grids(batch, patches):
    """`batch` (h, w) patch grids of mixed aspect ratios, each h·w ≤ `patches`."""
    from keras_siglip2.preprocessing.image_converter import naflex_target_size

    sizes = [PHOTO_SIZES[i % len(PHOTO_SIZES)] for i in range(batch)]
    return [tuple(s // 16 for s in naflex_target_size(h, w, 16, patches)) for h, w in sizes]


def make_inputs(args):
    """The task's inputs as NumPy arrays (our layout) and the reference's torch kwargs."""
    import torch

    rng = np.random.default_rng(0)
    if args.task == "image":
        images = rng.uniform(-1, 1, (args.batch, args.image_size, args.image_size, 3))
        images = images.astype("float32")
        torch_kwargs = {"pixel_values": torch.from_numpy(images.transpose(0, 3, 1, 2).copy())}
        return {"images": images}, torch_kwargs
    if args.task == "naflex":
        grids = naflex_grids(args.batch, args.patches)
        patches = rng.uniform(-1, 1, (args.batch, args.patches, 16 * 16 * 3)).astype("float32")
        mask = np.zeros((args.batch, args.patches), bool)
        for i, (h, w) in enumerate(grids):
            mask[i, : h * w] = True
            patches[i, h * w:] = 0.0
        spatial = np.array(grids, "int32")
        torch_kwargs = {
            "pixel_values": torch.from_numpy(patches),
            "pixel_attention_mask": torch.from_numpy(mask.astype("int64")),
            "spatial_shapes": torch.from_numpy(spatial.astype("int64")),
        }
        return {"patches": patches, "patch_mask": mask, "spatial_shapes": spatial}, torch_kwargs
    ids = rng.integers(4, args.vocab, (args.batch, common.TEXT_LENGTH)).astype("int32")
    for row, length in enumerate(rng.integers(4, common.TEXT_LENGTH, args.batch)):
        ids[row, length - 1] = 1
        ids[row, length:] = 0
    return {"token_ids": ids}, {"input_ids": torch.from_numpy(ids).long()}


def reference_model(args):
    """transformers model at `common.WIDTHS` with `args.depth` layers (random init)."""
    import torch
    from transformers import Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

    torch.manual_seed(0)
    text = dict(common.transformers_widths(), num_hidden_layers=args.depth, vocab_size=args.vocab,
                max_position_embeddings=common.TEXT_LENGTH)
    vision = dict(common.transformers_widths(), num_hidden_layers=args.depth, patch_size=16)
    if args.task == "naflex":
        return Siglip2Model(Siglip2Config(text_config=text,
                                          vision_config=dict(vision, num_patches=256))).eval()
    config = SiglipConfig(text_config=text, vision_config=dict(vision, image_size=args.image_size))
    return SiglipModel(config).eval()


def keras_hub_tower(args):
    """keras-hub's SigLIP tower of the same shape, or None for NaFlex (it has none)."""
    import keras_hub

    widths = common.keras_widths(args.depth)
    if args.task == "image":
        return keras_hub.models.SigLIPVisionEncoder(
            patch_size=16, image_shape=(args.image_size, args.image_size, 3), **widths)
    if args.task == "text":
        return keras_hub.models.SigLIPTextEncoder(
            vocabulary_size=args.vocab, embedding_dim=widths["hidden_dim"],
            max_sequence_length=common.TEXT_LENGTH, **widths)
    return None


def forward_flops(args, inputs):
    """Matmul FLOPs of one batch's forward pass (see the module docstring)."""
    if args.task == "text":
        return args.batch * common.text_flops(args.depth)
    if args.task == "image":
        return args.batch * common.vision_flops((args.image_size // 16) ** 2, args.depth)
    valid = inputs["patch_mask"].sum(axis=1)
    return sum(common.vision_flops(args.patches, args.depth, valid=int(v)) for v in valid)


def run_one(args):
    import keras
    import torch

    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.presets.huggingface import config_from_transformers, load_transformers_weights

    common.set_threads()
    reference = reference_model(args)
    backbone = SigLIP2Backbone.from_config(config_from_transformers(reference.config.to_dict()))
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    load_transformers_weights(backbone, state.__getitem__)
    del state
    ours = backbone.text_encoder if args.task == "text" else backbone.vision_encoder
    inputs, torch_inputs = make_inputs(args)
    reference_tower = reference.text_model if args.task == "text" else reference.vision_model

    def run_reference():
        with torch.inference_mode():
            return reference_tower(**torch_inputs).pooler_output.numpy()

    def run_ours():
        return keras.ops.convert_to_numpy(ours.predict_on_batch(inputs)["pooled"])

    fns = {"ours": run_ours, "transformers": run_reference}
    hub = keras_hub_tower(args)
    if hub is not None:
        hub_inputs = inputs if args.task == "image" else {
            "token_ids": inputs["token_ids"],
            "padding_mask": np.ones_like(inputs["token_ids"], bool)}
        fns["keras-hub"] = lambda: keras.ops.convert_to_numpy(hub.predict_on_batch(hub_inputs))
    error = float(np.max(np.abs(run_ours() - run_reference())))
    fns["matmul"] = common.matmul_fn()
    times = common.interleaved(fns, args.repeats, args.warmup)
    return {"times": times, "max_abs_error": error, "flops": forward_flops(args, inputs),
            "backend": keras.backend.backend()}


def rows(results, args):
    """`common.contest_rows` plus ours' largest difference from transformers."""
    out = common.contest_rows(results, args.batch)
    for row in out:
        if row["model"] == "ours":
            row["error"] = results[row["backend"]]["max_abs_error"]
    return out


COLUMNS = [("backend", "backend", ""), ("model", "model", ""), ("seconds", "batch s", ".3f"),
           ("throughput", "items/s", ".2f"), ("vs_transformers", "vs transformers", ".2f"),
           ("vs_keras_hub", "vs keras-hub", ".2f"), ("peak", "matmul peak GFLOP/s", ".1f"), ("util", "% of peak", ".1%"),
           ("error", "max |ours − transformers|", ".1e")]


def describe(args):
    what = {"image": f"fixed-res B/16 @ {args.image_size}",
            "naflex": f"NaFlex B/16 at {args.patches} patches, grids "
                      f"{naflex_grids(args.batch, args.patches)}",
            "text": f"text tower, length {common.TEXT_LENGTH}"}[args.task]
    return (f"{what}, {args.widths}, batch {args.batch}, depth {args.depth}, float32; median of "
            f"{args.repeats} interleaved rounds after {args.warmup} warm-up. "
            "'vs' columns: that row's speed relative to the peer (>1: faster).")


def main(argv=None):
    args = parse(argv)
    if args.json:
        print(json.dumps(run_one(args)))
        return
    flags = ("task", "depth", "batch", "image_size", "patches", "vocab", "repeats", "warmup",
             "tiny")
    results = common.run_backends(os.path.abspath(__file__), args, flags, args.backends.split(","))
    print(describe(args))
    print()
    print(common.format_table(rows(results, args), COLUMNS))


if __name__ == "__main__":
    main()
