"""Hugging Face transformers layout (`siglip` fixed-res, `siglip2` NaFlex) ↔ ours.

`transformers_preset_config` reads a checkpoint directory's configuration;
`load_transformers_weights` streams its tensors one by one through a
`get_tensor(name) -> np.ndarray` callable (a safetensors reader, a torch
state dict ...), so converting never holds two copies of the model. The
preset loader (`SigLIP2Backbone.from_preset(dir)`) goes through both.
"""

import json

import numpy as np

from keras_siglip2.presets.weights import load_entries

# transformers writes only non-default values into config.json files (e.g. an
# empty-ish vision_config for B/16 at 224), so the class defaults fill the gaps:
# SiglipTextConfig, SiglipVisionConfig and Siglip2VisionConfig.
_TRUNK_DEFAULTS = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
)
_DEFAULTS = {
    "text_config": dict(_TRUNK_DEFAULTS, vocab_size=32000, max_position_embeddings=64),
    "vision_config": dict(_TRUNK_DEFAULTS, image_size=224, patch_size=16),
    "siglip2_vision_config": dict(_TRUNK_DEFAULTS, patch_size=16, num_patches=256),
}
_TANH_GELUS = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_new")


def transformers_preset_config(preset):
    """Our config for a located transformers checkpoint (`resolver.Preset`).

    `config.json` is completed with the transformers class defaults and
    checked (tanh GELU, LayerNorm epsilon 1e-6); a NaFlex checkpoint takes
    its patch budget from `preprocessor_config.json` when it has one.
    """
    config = dict(preset.config)
    for part in ("text_config", "vision_config"):
        naflex = part == "vision_config" and config.get("model_type") == "siglip2"
        defaults = _DEFAULTS["siglip2_vision_config" if naflex else part]
        config[part] = {**defaults, **(config.get(part) or {})}
    for part in ("vision_config", "text_config"):
        act, eps = config[part]["hidden_act"], config[part]["layer_norm_eps"]
        if act not in _TANH_GELUS or abs(eps - 1e-6) > 1e-12:
            raise ValueError(
                f"{preset.source}: {part} uses activation {act!r} and LayerNorm epsilon "
                f"{eps}; SigLIP 2 uses tanh-approximate GELU and 1e-6."
            )
    ours = config_from_transformers(config)
    if ours["vision"]["image_size"] is None:
        processor = preset.file("preprocessor_config.json", required=False)
        if processor:
            with open(processor, encoding="utf-8") as f:
                max_patches = json.load(f).get("max_num_patches")
            if isinstance(max_patches, int) and max_patches > 0:
                ours["vision"]["max_num_patches"] = max_patches
    return ours


def config_from_transformers(hf_config):
    """A transformers `config.json` dict (`model_type` siglip/siglip2) → our config."""
    model_type = hf_config.get("model_type")
    if model_type not in ("siglip", "siglip2"):
        raise ValueError(
            f"Expected a SigLIP checkpoint (model_type 'siglip' or 'siglip2'); "
            f"got model_type {model_type!r}."
        )
    v, t = hf_config["vision_config"], hf_config["text_config"]

    def trunk(c):
        return dict(
            hidden_dim=c["hidden_size"],
            num_layers=c["num_hidden_layers"],
            num_heads=c["num_attention_heads"],
            intermediate_dim=c["intermediate_size"],
        )

    vision = dict(trunk(v), patch_size=v["patch_size"])
    if model_type == "siglip2":
        grid = int(round(v["num_patches"] ** 0.5))
        vision.update(image_size=None, position_grid_size=grid, max_num_patches=256)
    else:
        vision.update(image_size=v["image_size"])
    text = dict(
        trunk(t),
        vocabulary_size=t["vocab_size"],
        sequence_length=t["max_position_embeddings"],
        projection_dim=t.get("projection_size") or v["hidden_size"],
    )
    return {"vision": vision, "text": text}


def _linear(kernel):
    """torch Linear weight (out, in) → Keras kernel (in, out)."""
    return kernel.T


def _heads_in(num_heads):
    def convert(kernel):  # (H·hd, D_in) → (D_in, H, hd)
        return kernel.T.reshape(kernel.shape[1], num_heads, -1)

    return convert


def _heads_bias(num_heads):
    return lambda bias: bias.reshape(num_heads, -1)


def _heads_out(num_heads):
    def convert(kernel):  # (D, H·hd) → (H, hd, D)
        return kernel.T.reshape(num_heads, -1, kernel.shape[0])

    return convert


def _attention_entries(attention, prefix, num_heads):
    entries = []
    for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        layer = getattr(attention, ours)
        entries += [
            (layer.kernel, f"{prefix}.{theirs}.weight", _heads_in(num_heads)),
            (layer.bias, f"{prefix}.{theirs}.bias", _heads_bias(num_heads)),
        ]
    entries += [
        (attention.attention_output.kernel, f"{prefix}.out_proj.weight", _heads_out(num_heads)),
        (attention.attention_output.bias, f"{prefix}.out_proj.bias", None),
    ]
    return entries


def _mlp_entries(mlp, prefix):
    return [
        (mlp.fc1.kernel, f"{prefix}.fc1.weight", _linear),
        (mlp.fc1.bias, f"{prefix}.fc1.bias", None),
        (mlp.fc2.kernel, f"{prefix}.fc2.weight", _linear),
        (mlp.fc2.bias, f"{prefix}.fc2.bias", None),
    ]


def _norm_entries(norm, prefix):
    return [(norm.gamma, f"{prefix}.weight", None), (norm.beta, f"{prefix}.bias", None)]


def _block_entries(block, prefix, num_heads):
    return (
        _norm_entries(block.attention_norm, f"{prefix}.layer_norm1")
        + _attention_entries(block.attention, f"{prefix}.self_attn", num_heads)
        + _norm_entries(block.mlp_norm, f"{prefix}.layer_norm2")
        + _mlp_entries(block.mlp, f"{prefix}.mlp")
    )


def _fused_in_proj(part, num_heads):
    """Slice q/k/v out of torch MultiheadAttention's fused in_proj (3D, D)."""

    def convert(array):
        piece = np.split(array, 3, axis=0)[part]
        return piece.reshape(num_heads, -1) if piece.ndim == 1 else _heads_in(num_heads)(piece)

    return convert


def _conv_kernel(kernel):
    """Conv2d weight (D, 3, P, P) → our flattened (P·P·3, D) in (py, px, c) order."""
    return kernel.transpose(2, 3, 1, 0).reshape(-1, kernel.shape[0])


def transformers_weight_map(backbone):
    """List of `(our variable, transformers tensor name, transform or None)`."""
    vision, text = backbone.vision_encoder, backbone.text_encoder
    vh, th = vision.num_heads, text.num_heads
    v, t = "vision_model", "text_model"
    patch_transform = None if vision.naflex else _conv_kernel
    entries = [
        (backbone.logit_head.log_temperature, "logit_scale", lambda x: x.reshape(())),
        (backbone.logit_head.bias, "logit_bias", lambda x: x.reshape(())),
        (vision.patch_embedding.kernel, f"{v}.embeddings.patch_embedding.weight",
         patch_transform or _linear),
        (vision.patch_embedding.bias, f"{v}.embeddings.patch_embedding.bias", None),
        (vision.position_embedding.embeddings, f"{v}.embeddings.position_embedding.weight", None),
    ]
    for i, block in enumerate(vision.encoder_blocks):
        entries += _block_entries(block, f"{v}.encoder.layers.{i}", vh)
    entries += _norm_entries(vision.final_norm, f"{v}.post_layernorm")
    head = vision.pooling
    entries += [(head.probe, f"{v}.head.probe", None)]
    for part, name in enumerate(("query", "key", "value")):
        layer = getattr(head.attention, name)
        entries += [
            (layer.kernel, f"{v}.head.attention.in_proj_weight", _fused_in_proj(part, vh)),
            (layer.bias, f"{v}.head.attention.in_proj_bias", _fused_in_proj(part, vh)),
        ]
    output = head.attention.attention_output
    entries += [
        (output.kernel, f"{v}.head.attention.out_proj.weight", _heads_out(vh)),
        (output.bias, f"{v}.head.attention.out_proj.bias", None),
    ]
    entries += _norm_entries(head.norm, f"{v}.head.layernorm")
    entries += _mlp_entries(head.mlp, f"{v}.head.mlp")

    entries += [
        (text.embedding.token_embeddings, f"{t}.embeddings.token_embedding.weight", None),
        (text.embedding.position_embeddings, f"{t}.embeddings.position_embedding.weight", None),
    ]
    for i, block in enumerate(text.encoder_blocks):
        entries += _block_entries(block, f"{t}.encoder.layers.{i}", th)
    entries += _norm_entries(text.final_norm, f"{t}.final_layer_norm")
    entries += [
        (text.head.kernel, f"{t}.head.weight", _linear),
        (text.head.bias, f"{t}.head.bias", None),
    ]
    return entries


def load_transformers_weights(backbone, get_tensor, prefix="", checkpoint="the checkpoint"):
    """Assign every weight of `backbone` from transformers-named tensors.

    `get_tensor(name)` returns a NumPy array; `prefix` is prepended to names
    (some checkpoints nest the model, e.g. "model."). Each tensor is fetched,
    converted and assigned before the next is read (`weights.load_entries`).
    """
    entries = [
        (variable, prefix + name, transform)
        for variable, name, transform in transformers_weight_map(backbone)
    ]
    load_entries(backbone, entries, get_tensor, checkpoint=checkpoint)
