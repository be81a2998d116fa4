"""Checkpoints made by the real libraries for the preset tests.

* small random transformers `SiglipModel` / `Siglip2Model` (the reference
  outputs), written with `save_pretrained`;
* the same weights renamed to big_vision's parameter names (an independent
  mapping, written from big_vision's module names), per-layer or stacked;
* small random keras-hub `SigLIPBackbone`s.
"""

import keras
import numpy as np
import torch

from tests.models.transformers_reference import randomize  # noqa: F401  (re-exported)

SMALL = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2)
PATCH = 16
IMAGE_SIZE = 64  # 4×4 patches
NAFLEX_PATCHES = 16  # 4×4 position grid
VOCABULARY = 1000
SEQUENCE = 64


def transformers_model(naflex, seed=0, **widths):
    from transformers import Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

    trunk = dict(SMALL, **widths)
    text = dict(trunk, vocab_size=VOCABULARY, max_position_embeddings=SEQUENCE)
    vision = dict(trunk, patch_size=PATCH)
    if naflex:
        config = Siglip2Config(text_config=text, vision_config=dict(vision, num_patches=NAFLEX_PATCHES))
        model = Siglip2Model(config)
    else:
        config = SiglipConfig(text_config=text, vision_config=dict(vision, image_size=IMAGE_SIZE))
        model = SiglipModel(config)
    return randomize(model, seed)


def token_ids(rng, batch):
    ids = rng.integers(4, VOCABULARY, (batch, SEQUENCE)).astype("int32")
    for row, length in enumerate(rng.integers(1, SEQUENCE, batch)):
        ids[row, length - 1] = 1
        ids[row, length:] = 0
    return ids


# (h, w) grids of at most 16 patches: padding, shrinking below the 4×4 grid
# (antialiased), stretching a side beyond it.
NAFLEX_GRIDS = [(4, 4), (2, 8), (3, 5), (1, 16), (1, 1)]


def inputs(rng, naflex, batch=None):
    if naflex:
        grids = NAFLEX_GRIDS
        patches = rng.uniform(-1, 1, (len(grids), NAFLEX_PATCHES, PATCH * PATCH * 3)).astype("float32")
        mask = np.zeros((len(grids), NAFLEX_PATCHES), bool)
        for i, (h, w) in enumerate(grids):
            mask[i, : h * w] = True
            patches[i, h * w :] = 0.0
        image = {"patches": patches, "patch_mask": mask, "spatial_shapes": np.array(grids, "int32")}
    else:
        image = {"images": rng.uniform(-1, 1, (batch or 2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")}
    return {**image, "token_ids": token_ids(rng, 3)}


def transformers_outputs(model, batch):
    with torch.no_grad():
        if "patches" in batch:
            out = model(
                pixel_values=torch.from_numpy(batch["patches"]),
                pixel_attention_mask=torch.from_numpy(batch["patch_mask"].astype("int64")),
                spatial_shapes=torch.from_numpy(batch["spatial_shapes"].astype("int64")),
                input_ids=torch.from_numpy(batch["token_ids"]).long(),
            )
        else:
            out = model(
                pixel_values=torch.from_numpy(batch["images"].transpose(0, 3, 1, 2)),
                input_ids=torch.from_numpy(batch["token_ids"]).long(),
            )
    return {
        "image_embeddings": out.image_embeds.numpy(),
        "text_embeddings": out.text_embeds.numpy(),
        "logits": out.logits_per_image.numpy(),
    }


def max_errors(ours, reference):
    """Largest absolute difference per output of our backbone vs `reference`."""
    return {
        key: float(np.max(np.abs(keras.ops.convert_to_numpy(ours[key]) - value)))
        for key, value in reference.items()
    }


# ----------------------------------------------------------------------------
# transformers state dict → big_vision parameter names.


def _heads_in(weight, heads):  # torch (H·hd, D) → (D, H, hd)
    return weight.T.reshape(weight.shape[1], heads, -1)


def _heads_out(weight, heads):  # torch (D, H·hd) → (H, hd, D)
    return weight.T.reshape(heads, -1, weight.shape[0])


def _bv_block(state, src, dst, heads):
    out = {
        f"{dst}/LayerNorm_0/scale": state[f"{src}.layer_norm1.weight"],
        f"{dst}/LayerNorm_0/bias": state[f"{src}.layer_norm1.bias"],
        f"{dst}/LayerNorm_1/scale": state[f"{src}.layer_norm2.weight"],
        f"{dst}/LayerNorm_1/bias": state[f"{src}.layer_norm2.bias"],
        f"{dst}/MlpBlock_0/Dense_0/kernel": state[f"{src}.mlp.fc1.weight"].T,
        f"{dst}/MlpBlock_0/Dense_0/bias": state[f"{src}.mlp.fc1.bias"],
        f"{dst}/MlpBlock_0/Dense_1/kernel": state[f"{src}.mlp.fc2.weight"].T,
        f"{dst}/MlpBlock_0/Dense_1/bias": state[f"{src}.mlp.fc2.bias"],
    }
    attention = f"{dst}/MultiHeadDotProductAttention_0"
    for bv, hf in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        out[f"{attention}/{bv}/kernel"] = _heads_in(state[f"{src}.self_attn.{hf}.weight"], heads)
        out[f"{attention}/{bv}/bias"] = state[f"{src}.self_attn.{hf}.bias"].reshape(heads, -1)
    out[f"{attention}/out/kernel"] = _heads_out(state[f"{src}.self_attn.out_proj.weight"], heads)
    out[f"{attention}/out/bias"] = state[f"{src}.self_attn.out_proj.bias"]
    return out


def big_vision_params(model, stacked=False):
    """A transformers SigLIP model's weights under big_vision's names."""
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    vc, tc = model.config.vision_config, model.config.text_config
    vh, th = vc.num_attention_heads, tc.num_attention_heads
    naflex = model.config.model_type == "siglip2"
    v, t = "vision_model", "text_model"
    patch = state[f"{v}.embeddings.patch_embedding.weight"]
    positions = state[f"{v}.embeddings.position_embedding.weight"]
    if naflex:
        grid = int(round(positions.shape[0] ** 0.5))
        kernel, pos = patch.T, positions.reshape(grid, grid, -1)
    else:
        kernel, pos = patch.transpose(2, 3, 1, 0), positions[None]
    params = {
        "params/t": state["logit_scale"].reshape(1),
        "params/b": state["logit_bias"].reshape(1),
        "params/img/embedding/kernel": kernel,
        "params/img/embedding/bias": state[f"{v}.embeddings.patch_embedding.bias"],
        "params/img/pos_embedding": pos,
        "params/img/Transformer/encoder_norm/scale": state[f"{v}.post_layernorm.weight"],
        "params/img/Transformer/encoder_norm/bias": state[f"{v}.post_layernorm.bias"],
        "params/img/MAPHead_0/probe": state[f"{v}.head.probe"],
        "params/img/MAPHead_0/LayerNorm_0/scale": state[f"{v}.head.layernorm.weight"],
        "params/img/MAPHead_0/LayerNorm_0/bias": state[f"{v}.head.layernorm.bias"],
        "params/txt/Embed_0/embedding": state[f"{t}.embeddings.token_embedding.weight"],
        "params/txt/pos_embedding": state[f"{t}.embeddings.position_embedding.weight"][None],
        "params/txt/Encoder_0/encoder_norm/scale": state[f"{t}.final_layer_norm.weight"],
        "params/txt/Encoder_0/encoder_norm/bias": state[f"{t}.final_layer_norm.bias"],
        "params/txt/head/kernel": state[f"{t}.head.weight"].T,
        "params/txt/head/bias": state[f"{t}.head.bias"],
    }
    head = "params/img/MAPHead_0"
    for i in (0, 1):
        params[f"{head}/MlpBlock_0/Dense_{i}/kernel"] = state[f"{v}.head.mlp.fc{i + 1}.weight"].T
        params[f"{head}/MlpBlock_0/Dense_{i}/bias"] = state[f"{v}.head.mlp.fc{i + 1}.bias"]
    in_w = np.split(state[f"{v}.head.attention.in_proj_weight"], 3)
    in_b = np.split(state[f"{v}.head.attention.in_proj_bias"], 3)
    for part, name in enumerate(("query", "key", "value")):
        params[f"{head}/MultiHeadDotProductAttention_0/{name}/kernel"] = _heads_in(in_w[part], vh)
        params[f"{head}/MultiHeadDotProductAttention_0/{name}/bias"] = in_b[part].reshape(vh, -1)
    params[f"{head}/MultiHeadDotProductAttention_0/out/kernel"] = _heads_out(
        state[f"{v}.head.attention.out_proj.weight"], vh
    )
    params[f"{head}/MultiHeadDotProductAttention_0/out/bias"] = state[f"{v}.head.attention.out_proj.bias"]

    for tower, src, dst, heads, depth in (
        ("img", f"{v}.encoder.layers", "params/img/Transformer", vh, vc.num_hidden_layers),
        ("txt", f"{t}.encoder.layers", "params/txt/Encoder_0", th, tc.num_hidden_layers),
    ):
        blocks = [_bv_block(state, f"{src}.{i}", f"{dst}/encoderblock_{i}", heads) for i in range(depth)]
        if stacked:
            for key in blocks[0]:
                name = key.replace(f"{dst}/encoderblock_0/", f"{dst}/encoderblock/")
                params[name] = np.stack([blocks[i][key.replace("encoderblock_0", f"encoderblock_{i}")]
                                         for i in range(depth)])
        else:
            for block in blocks:
                params.update(block)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}


# ----------------------------------------------------------------------------
# keras-hub SigLIPBackbone.


def keras_hub_backbone(hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
                       image_size=IMAGE_SIZE, patch_size=PATCH, vocabulary_size=VOCABULARY,
                       seed=0):
    """A random keras-hub SigLIPBackbone; biases and norms get non-trivial values."""
    import keras_hub

    vision = keras_hub.models.SigLIPVisionEncoder(
        patch_size=patch_size, hidden_dim=hidden_dim, num_layers=num_layers,
        num_heads=num_heads, intermediate_dim=intermediate_dim,
        image_shape=(image_size, image_size, 3),
    )
    text = keras_hub.models.SigLIPTextEncoder(
        vocabulary_size=vocabulary_size, embedding_dim=hidden_dim, hidden_dim=hidden_dim,
        num_layers=num_layers, num_heads=num_heads, intermediate_dim=intermediate_dim,
        max_sequence_length=SEQUENCE,
    )
    backbone = keras_hub.models.SigLIPBackbone(vision, text)
    rng = np.random.default_rng(seed)
    for weight in backbone.weights:
        if "position_ids" in weight.path:
            continue
        shape = tuple(weight.shape)
        if weight.path.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif "logit" in weight.path:
            value = 0.5 * rng.standard_normal(shape)
        else:
            value = 0.02 * rng.standard_normal(shape)
        weight.assign(value.astype("float32"))
    return backbone
