"""keras-hub `SigLIPBackbone` presets (Kaggle `keras/siglip`) → our backbone.

A keras-hub preset directory holds `config.json` (the serialized
`SigLIPBackbone` with its two encoders) and `model.weights.h5`. The
conversion builds keras-hub's own model from that config, lets keras-hub load
its weights, and copies every variable into ours:

* patch embedding: `Conv2D` kernel (P, P, 3, D) → our (P·P·3, D), same
  (py, px, c) order; position embeddings `Embedding` tables as they are;
* attention: `keras.layers.MultiHeadAttention` query/key/value (D, H, hd),
  output (H, hd, D) — our layout;
* LayerNorm gamma/beta, Dense kernels (in, out), the MAP probe (1, 1, D);
* `SigLIPHead.logit_scale` / `logit_bias` → our `t'` / `b`.
"""

KERAS_HUB_BACKBONE = "keras_hub>SigLIPBackbone"


def is_keras_hub_siglip(config):
    return isinstance(config, dict) and config.get("registered_name") == KERAS_HUB_BACKBONE


def config_from_keras_hub(config, max_num_patches=None):
    """The `config.json` of a keras-hub SigLIP preset → our backbone config."""
    if not is_keras_hub_siglip(config):
        raise ValueError(
            f"Expected a keras-hub SigLIPBackbone config; got {config.get('registered_name')!r}."
        )
    vision = config["config"]["vision_encoder"]["config"]
    text = config["config"]["text_encoder"]["config"]
    for part, c in (("vision", vision), ("text", text)):
        activation = c.get("intermediate_activation", "gelu_approximate")
        epsilon = c.get("layer_norm_epsilon", 1e-6)
        if activation != "gelu_approximate" or abs(epsilon - 1e-6) > 1e-12:
            raise ValueError(
                f"This keras-hub SigLIP preset's {part} tower uses activation "
                f"{activation!r} and LayerNorm epsilon {epsilon}; SigLIP 2 uses "
                "'gelu_approximate' and 1e-6, so it cannot be converted."
            )
    if text["embedding_dim"] != text["hidden_dim"]:
        raise ValueError("keras-hub text embedding_dim != hidden_dim is not a SigLIP 2 layout.")
    data_format = vision.get("data_format") or "channels_last"
    shape = vision["image_shape"]
    height = shape[0] if data_format == "channels_last" else shape[1]

    def trunk(c):
        return dict(
            hidden_dim=c["hidden_dim"],
            num_layers=c["num_layers"],
            num_heads=c["num_heads"],
            intermediate_dim=c["intermediate_dim"],
        )

    return {
        "vision": dict(trunk(vision), patch_size=vision["patch_size"], image_size=height),
        "text": dict(
            trunk(text),
            vocabulary_size=text["vocabulary_size"],
            sequence_length=text["max_sequence_length"],
            projection_dim=text.get("projection_dim") or text["hidden_dim"],
        ),
    }


def _attention(ours, theirs):
    pairs = (
        (ours.query, theirs.query_dense), (ours.key, theirs.key_dense),
        (ours.value, theirs.value_dense), (ours.attention_output, theirs.output_dense),
    )
    return [(a.kernel, b.kernel) for a, b in pairs] + [(a.bias, b.bias) for a, b in pairs]


def _norm(ours, theirs):
    return [(ours.gamma, theirs.gamma), (ours.beta, theirs.beta)]


def _mlp(ours, theirs):
    return [
        (ours.fc1.kernel, theirs.fc1.kernel),
        (ours.fc1.bias, theirs.fc1.bias),
        (ours.fc2.kernel, theirs.fc2.kernel),
        (ours.fc2.bias, theirs.fc2.bias),
    ]


def _blocks(ours, theirs):
    if len(ours) != len(theirs):
        raise ValueError(f"Depth mismatch: {len(ours)} blocks vs keras-hub's {len(theirs)}.")
    pairs = []
    for mine, kh in zip(ours, theirs):
        pairs += _norm(mine.attention_norm, kh.layer_norm1)
        pairs += _attention(mine.attention, kh.self_attn)
        pairs += _norm(mine.mlp_norm, kh.layer_norm2)
        pairs += _mlp(mine.mlp, kh.mlp)
    return pairs


def keras_hub_weight_map(backbone, keras_hub_backbone):
    """List of `(our variable, keras-hub variable, transform or None)`."""
    vision, text = backbone.vision_encoder, backbone.text_encoder
    kh_vision, kh_text = keras_hub_backbone.vision_encoder, keras_hub_backbone.text_encoder
    embedding = kh_vision.embedding
    flatten = lambda kernel: kernel.reshape(-1, kernel.shape[-1])  # noqa: E731
    entries = [
        (backbone.logit_head.log_temperature, keras_hub_backbone.siglip_head.logit_scale, None),
        (backbone.logit_head.bias, keras_hub_backbone.siglip_head.logit_bias, None),
        (vision.patch_embedding.kernel, embedding.patch_embedding.kernel, flatten),
    ]
    pairs = [
        (vision.patch_embedding.bias, embedding.patch_embedding.bias),
        (vision.position_embedding.embeddings, embedding.position_embedding.embeddings),
    ]
    pairs += _blocks(vision.encoder_blocks, kh_vision.encoder_layers)
    pairs += _norm(vision.final_norm, kh_vision.post_layer_norm)
    head, kh_head = vision.pooling, kh_vision.head
    pairs += [(head.probe, kh_head.probe)]
    pairs += _attention(head.attention, kh_head.attention)
    pairs += _norm(head.norm, kh_head.layer_norm)
    pairs += _mlp(head.mlp, kh_head.mlp)
    kh_embedding = kh_text.embedding
    pairs += [
        (text.embedding.token_embeddings, kh_embedding.token_embedding.embeddings),
        (text.embedding.position_embeddings, kh_embedding.position_embedding.embeddings),
    ]
    pairs += _blocks(text.encoder_blocks, kh_text.encoder_layers)
    pairs += _norm(text.final_norm, kh_text.post_layer_norm)
    pairs += [(text.head.kernel, kh_text.head.kernel), (text.head.bias, kh_text.head.bias)]
    return entries + [(ours, theirs, None) for ours, theirs in pairs]
