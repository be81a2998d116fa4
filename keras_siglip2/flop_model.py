"""Analytic FLOPs of SigLIP 2 training steps and encoder calls, by component.

Matrix products only (2 FLOPs per multiply-add), the convention of model FLOPs
utilisation (MFU): elementwise work (LayerNorm, GELU, softmax, the optimiser)
is left out, and a step's MFU is `training_step_flops(...)["total"] / seconds
/ peak`. A trained part costs 3× its forward pass (the forward, then the
gradients with respect to activations and to weights), the patch embedding
2× (pixels need no gradient); the EMA teacher runs forward only;
rematerialisation adds the recomputed forward work.

Components of a training step (`training_step_flops`):

| key | what |
|---|---|
| `image_tower` | patch + position embedding, blocks, MAP head on the batch |
| `text_tower` | blocks and head (the token lookup is free) |
| `sigmoid_loss` | the B × B similarity matrix |
| `decoder` | LocCa decoder over 3 tasks × T tokens per image, without the vocabulary |
| `vocabulary` | the tied `(D, V)` projection on the scored target tokens (4× its forward: the chunked loss recomputes each chunk's logits in the backward pass) |
| `teacher` | EMA tower and both prototype heads, forward only |
| `local_views` | the student tower (blocks + MAP) on the local crops |
| `masked_view` | the student tower (blocks only) on the masked global view |
| `heads` | the student's prototype heads (global on crops, patch on masked patches) |
| `remat` | forward work recomputed in the backward pass |
"""

import math

TRAINED = 3  # forward + two backward products per forward product
INPUT_LAYER = 2  # forward + weight gradient: nothing before it needs a gradient
PATCH_CHANNELS = 3
LOCCA_TASKS = 3


def encoder_layer_flops(tokens, width, mlp, key_tokens=None):
    """Forward FLOPs of one pre-LN block on one sequence of `tokens` that
    attends over `key_tokens` (default: itself): q/k/v/out projections,
    scores and weighted sum, MLP."""
    key_tokens = tokens if key_tokens is None else key_tokens
    projections = 2 * tokens * 2 * width * width + 2 * key_tokens * 2 * width * width
    attention = 2 * 2 * tokens * key_tokens * width
    return projections + attention + 2 * 2 * tokens * width * mlp


def _mlp_hidden_flops(tokens, width, mlp):
    """The first MLP matmul, recomputed by `remat="mlp"`."""
    return 2 * tokens * width * mlp


def map_head_flops(tokens, width, mlp):
    """Forward FLOPs of the MAP head on one sequence: a 1-token probe
    attending over `tokens`, then its MLP."""
    return encoder_layer_flops(1, width, mlp, key_tokens=tokens)


def patch_embedding_flops(vision, num_patches):
    """Forward FLOPs of the patch embedding (and the NaFlex position-table
    resize) for one image."""
    flops = 2 * num_patches * vision["patch_size"] ** 2 * PATCH_CHANNELS * vision["hidden_dim"]
    if vision.get("image_size") is None:
        flops += 2 * num_patches * vision["position_grid_size"] ** 2 * vision["hidden_dim"]
    return flops


def image_tower_flops(vision, num_patches, pooled=True, embed=True):
    """Forward FLOPs of the image tower on one image of `num_patches` patches."""
    width, mlp = vision["hidden_dim"], vision["intermediate_dim"]
    flops = vision["num_layers"] * encoder_layer_flops(num_patches, width, mlp)
    if embed:
        flops += patch_embedding_flops(vision, num_patches)
    if pooled:
        flops += map_head_flops(num_patches, width, mlp)
    return flops


def text_tower_flops(text):
    """Forward FLOPs of the text tower on one sequence."""
    width, length = text["hidden_dim"], text["sequence_length"]
    blocks = text["num_layers"] * encoder_layer_flops(length, width, text["intermediate_dim"])
    return blocks + 2 * width * text["projection_dim"]


def prototype_head_flops(width, settings, num_prototypes):
    """Forward FLOPs of one `PrototypeHead` on one vector."""
    hidden, bottleneck = settings["head_hidden_dim"], settings["head_bottleneck_dim"]
    widths = [width] + [hidden] * (settings["head_layers"] - 1) + [bottleneck]
    mlp = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
    return mlp + 2 * bottleneck * num_prototypes


def decoder_flops(text, vision_width, num_patches, decoder_layers, sequences=LOCCA_TASKS):
    """Forward FLOPs of the LocCa decoder (without the vocabulary projection)
    for one image: `sequences` sequences of T tokens sharing one memory of
    `num_patches` tokens."""
    width, mlp, length = text["hidden_dim"], text["intermediate_dim"], text["sequence_length"]
    queries = sequences * length
    self_attention = sequences * (2 * length * 4 * width * width + 2 * 2 * length**2 * width)
    cross = (
        2 * queries * 2 * width * width  # query and output projections
        + 2 * num_patches * 2 * vision_width * width  # keys and values, once per image
        + 2 * 2 * queries * num_patches * width
    )
    return decoder_layers * (self_attention + cross + 2 * 2 * queries * width * mlp)


def training_step_flops(
    config,
    batch_size,
    num_patches=None,
    locca=False,
    decoder_layers=None,
    vocabulary_size=None,
    scored_tokens=None,
    chunk_size=256,
    self_supervised=None,
    remat=None,
):
    """Model FLOPs of one training step, by component (see the module docstring).

    Args:
        config: backbone config `{"vision": ..., "text": ...}` (`configs`).
        batch_size: image–text pairs per step.
        num_patches: patches per image (default: the fixed grid, or NaFlex
            `max_num_patches`).
        locca: whether the LocCa decoder trains.
        decoder_layers: decoder depth (default: half the text tower's).
        vocabulary_size: decoder vocabulary incl. coordinate tokens (default:
            the text vocabulary + 1000).
        scored_tokens: target tokens with a weight over the whole batch and
            the three tasks (default: every position); the vocabulary
            projection runs on them rounded up to `chunk_size`.
        self_supervised: the settings dict of `SigLIP2.self_supervised`
            (`models.self_supervised.self_supervised_settings`), or None.
        remat: None, "mlp" or "block" (`SigLIP2(remat=...)`).

    Returns:
        `{component: FLOPs}` plus `"total"`.
    """
    vision, text = config["vision"], config["text"]
    if num_patches is None:
        if vision.get("image_size") is None:
            num_patches = vision["max_num_patches"]
        else:
            num_patches = (vision["image_size"] // vision["patch_size"]) ** 2
    width, mlp = vision["hidden_dim"], vision["intermediate_dim"]
    length = text["sequence_length"]

    # Forward FLOPs of the parts that train, and of their blocks (for remat).
    embedding = batch_size * patch_embedding_flops(vision, num_patches)
    trained = {
        "image_tower": batch_size * image_tower_flops(vision, num_patches, embed=False),
        "text_tower": batch_size * text_tower_flops(text),
        "sigmoid_loss": 2 * batch_size * batch_size * width,
    }
    blocks = batch_size * (
        vision["num_layers"] * encoder_layer_flops(num_patches, width, mlp)
        + text["num_layers"] * encoder_layer_flops(length, text["hidden_dim"], text["intermediate_dim"])
    )
    mlp_hidden = batch_size * (
        vision["num_layers"] * _mlp_hidden_flops(num_patches, width, mlp)
        + text["num_layers"] * _mlp_hidden_flops(length, text["hidden_dim"], text["intermediate_dim"])
    )
    forward_only = {}
    if locca:
        layers = decoder_layers or max(1, text["num_layers"] // 2)
        vocabulary = vocabulary_size or text["vocabulary_size"] + 1000
        decoder = batch_size * decoder_flops(text, width, num_patches, layers)
        trained["decoder"] = decoder
        blocks += decoder
        mlp_hidden += batch_size * layers * _mlp_hidden_flops(
            LOCCA_TASKS * length, text["hidden_dim"], text["intermediate_dim"]
        )
        tokens = LOCCA_TASKS * length * batch_size if scored_tokens is None else scored_tokens
        chunk = min(chunk_size, LOCCA_TASKS * length * batch_size)
        tokens = max(chunk, math.ceil(tokens / chunk) * chunk)
        vocabulary_forward = 2 * tokens * text["hidden_dim"] * vocabulary
    if self_supervised:
        settings = self_supervised
        views = settings["num_local_views"]
        local_tokens = settings["local_view_patches"] ** 2
        masked = int(math.floor(settings["mask_ratio"] * num_patches))
        global_head = prototype_head_flops(width, settings, settings["num_prototypes"])
        patch_head = prototype_head_flops(width, settings, settings["num_patch_prototypes"])
        forward_only["teacher"] = batch_size * (
            image_tower_flops(vision, num_patches) + global_head + masked * patch_head
        )
        local_blocks = vision["num_layers"] * encoder_layer_flops(local_tokens, width, mlp)
        trained["local_views"] = batch_size * views * (
            local_blocks + map_head_flops(local_tokens, width, mlp)
        )
        local_embedding = batch_size * views * (
            2 * local_tokens * vision["patch_size"] ** 2 * PATCH_CHANNELS * width
        )
        masked_blocks = vision["num_layers"] * encoder_layer_flops(num_patches, width, mlp)
        trained["masked_view"] = batch_size * masked_blocks
        trained["heads"] = batch_size * (views * global_head + masked * patch_head)
        blocks += batch_size * (views * local_blocks + masked_blocks)
        mlp_hidden += batch_size * vision["num_layers"] * (
            views * _mlp_hidden_flops(local_tokens, width, mlp)
            + _mlp_hidden_flops(num_patches, width, mlp)
        )
    flops = {name: TRAINED * value for name, value in trained.items()}
    flops["image_tower"] += INPUT_LAYER * embedding
    if self_supervised:
        flops["local_views"] += INPUT_LAYER * local_embedding
        flops["masked_view"] += INPUT_LAYER * embedding
    if locca:
        flops["vocabulary"] = (TRAINED + 1) * vocabulary_forward
    flops.update(forward_only)
    flops["remat"] = {None: 0, "mlp": mlp_hidden, "block": blocks}[remat]
    flops["total"] = sum(flops.values())
    return flops


def encoder_forward_flops(config, batch_size, tower="image", num_patches=None):
    """Forward FLOPs of one call of the image (`tower="image"`) or text tower
    on `batch_size` inputs (inference)."""
    if tower == "text":
        return batch_size * text_tower_flops(config["text"])
    vision = config["vision"]
    if num_patches is None:
        if vision.get("image_size") is None:
            num_patches = vision["max_num_patches"]
        else:
            num_patches = (vision["image_size"] // vision["patch_size"]) ** 2
    return batch_size * image_tower_flops(vision, num_patches)
