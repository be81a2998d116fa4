"""Architecture variants and the table of released SigLIP 2 checkpoints.

A model config is a plain dict ``{"vision": {...}, "text": {...}}`` whose two
parts are the constructor arguments of `SigLIP2VisionEncoder` and
`SigLIP2TextEncoder`; `SigLIP2Backbone.from_config(config)` builds it.
"""

import difflib
import re

# Transformer trunk sizes (SPEC §1): width, depth, MLP width, heads.
VARIANTS = {
    "B": dict(hidden_dim=768, num_layers=12, intermediate_dim=3072, num_heads=12),
    "L": dict(hidden_dim=1024, num_layers=24, intermediate_dim=4096, num_heads=16),
    "So400m": dict(
        hidden_dim=1152, num_layers=27, intermediate_dim=4304, num_heads=16
    ),
    "g-opt": dict(
        hidden_dim=1536, num_layers=40, intermediate_dim=6144, num_heads=16
    ),
}

GEMMA_VOCABULARY_SIZE = 256_000
TEXT_SEQUENCE_LENGTH = 64
NAFLEX_POSITION_GRID = 16
NAFLEX_DEFAULT_MAX_PATCHES = 256
# The sequence lengths the released NaFlex checkpoints were trained with (SPEC §2).
NAFLEX_TRAINED_LENGTHS = (128, 256, 576, 784, 1024)


def vision_config(variant, patch_size, image_size=None, **overrides):
    """Constructor arguments of `SigLIP2VisionEncoder` for a trunk variant.

    `image_size=None` selects the NaFlex (variable resolution) tower.
    """
    config = dict(VARIANTS[variant], patch_size=patch_size, image_size=image_size)
    if image_size is None:
        config.update(
            position_grid_size=NAFLEX_POSITION_GRID,
            max_num_patches=NAFLEX_DEFAULT_MAX_PATCHES,
        )
    config.update(overrides)
    return config


def text_config(variant, projection_dim, **overrides):
    """Constructor arguments of `SigLIP2TextEncoder` for a trunk variant."""
    config = dict(
        VARIANTS[variant],
        vocabulary_size=GEMMA_VOCABULARY_SIZE,
        sequence_length=TEXT_SEQUENCE_LENGTH,
        projection_dim=projection_dim,
    )
    config.update(overrides)
    return config


def model_config(image_variant, patch_size, image_size=None, text_variant=None):
    """A full backbone config; the text tower projects to the image width."""
    text_variant = text_variant or image_variant
    return {
        "vision": vision_config(image_variant, patch_size, image_size),
        "text": text_config(
            text_variant, projection_dim=VARIANTS[image_variant]["hidden_dim"]
        ),
    }


def tiny(naflex=False, vocabulary_size=1000, image_size=32, patch_size=8):
    """A few-thousand-parameter config for tests and the demo."""
    trunk = dict(hidden_dim=32, num_layers=2, intermediate_dim=64, num_heads=2)
    vision = dict(
        trunk,
        patch_size=patch_size,
        image_size=None if naflex else image_size,
    )
    if naflex:
        vision.update(position_grid_size=4, max_num_patches=16)
    text = dict(
        trunk,
        vocabulary_size=vocabulary_size,
        sequence_length=16,
        projection_dim=32,
    )
    return {"vision": vision, "text": text}


# Released checkpoints: preset name -> facts. `params` is the published
# parameter count (SPEC §1) where one is published.
_SIZE_NAMES = {"B": "base", "L": "large", "So400m": "so400m", "g-opt": "giant_opt"}
_ALIAS_STEMS = {"B": "b", "L": "l", "So400m": "so400m", "g-opt": "g"}


def _checkpoint(variant, patch, res, text_variant=None, params=None, kaggle_version=1):
    """`kaggle_version=None`: keras-hub publishes no preset for this checkpoint."""
    size = _SIZE_NAMES[variant]
    tail = "naflex" if res is None else str(res)
    name = f"siglip2_{size}_patch{patch}_{tail}"
    kaggle = None
    if res is not None and kaggle_version is not None:
        kaggle = f"kaggle://keras/siglip/keras/{name}/{kaggle_version}"
    return name, dict(
        image_variant=variant,
        text_variant=text_variant or variant,
        patch_size=patch,
        image_size=res,
        hf_repo=f"google/siglip2-{size.replace('_', '-')}-patch{patch}-{tail}",
        kaggle_handle=kaggle,
        params=params,
    )


CHECKPOINTS = dict(
    [
        _checkpoint("B", 16, 224, params=375_187_970),
        _checkpoint("B", 16, 256),
        _checkpoint("B", 16, 384),
        _checkpoint("B", 16, 512, kaggle_version=None),
        _checkpoint("B", 32, 256, params=376_856_066),
        _checkpoint("L", 16, 256, params=881_526_786),
        _checkpoint("L", 16, 384),
        _checkpoint("L", 16, 512),
        _checkpoint("So400m", 14, 224, params=1_135_463_602),
        _checkpoint("So400m", 14, 384, params=1_136_008_498),
        _checkpoint("So400m", 16, 256, params=1_135_670_962),
        _checkpoint("So400m", 16, 384),
        _checkpoint("So400m", 16, 512, params=1_136_555_698),
        _checkpoint(
            "g-opt", 16, 256, text_variant="So400m", params=1_871_393_906, kaggle_version=2
        ),
        _checkpoint("g-opt", 16, 384, text_variant="So400m"),
        _checkpoint("B", 16, None, params=375_234_050),
        _checkpoint("So400m", 16, None, params=1_135_670_962),
    ]
)

# Short names users type. `<alias>-<res>` forms are derived below.
_DEFAULT_RESOLUTION = {
    "b16": "siglip2_base_patch16_224",
    "b32": "siglip2_base_patch32_256",
    "l16": "siglip2_large_patch16_256",
    "so400m": "siglip2_so400m_patch14_384",
    "so400m14": "siglip2_so400m_patch14_384",
    "so400m16": "siglip2_so400m_patch16_256",
    "g16": "siglip2_giant_opt_patch16_256",
    "b16-naflex": "siglip2_base_patch16_naflex",
    "so400m-naflex": "siglip2_so400m_patch16_naflex",
    "so400m16-naflex": "siglip2_so400m_patch16_naflex",
}


def _build_aliases():
    aliases = dict(_DEFAULT_RESOLUTION)
    for name, facts in CHECKPOINTS.items():
        stem = _ALIAS_STEMS[facts["image_variant"]] + str(facts["patch_size"])
        if facts["image_size"] is not None:
            aliases[f"{stem}-{facts['image_size']}"] = name
            if facts["image_variant"] == "So400m" and facts["patch_size"] == 14:
                aliases[f"so400m-{facts['image_size']}"] = name
    return aliases


ALIASES = _build_aliases()


def resolve_name(name):
    """Map an alias or full preset name to the full checkpoint name.

    Raises `ValueError` listing close matches for an unknown name.
    """
    key = name.strip()
    lowered = key.lower().replace("/", "").replace("_", "-")
    if key in CHECKPOINTS:
        return key
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    if lowered in ALIASES:
        return ALIASES[lowered]
    snake = re.sub(r"[-/]", "_", key.lower())
    if snake in CHECKPOINTS:
        return snake
    known = sorted(CHECKPOINTS) + sorted(ALIASES)
    close = difflib.get_close_matches(key.lower(), known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown SigLIP 2 preset {name!r}.{hint} "
        "Call `keras_siglip2.list_presets()` for every name, or pass a local "
        "path, an `hf://` or a `kaggle://` handle."
    )


def checkpoint_config(name):
    """The backbone config of a released checkpoint (alias or full name)."""
    facts = CHECKPOINTS[resolve_name(name)]
    return model_config(
        facts["image_variant"],
        facts["patch_size"],
        facts["image_size"],
        text_variant=facts["text_variant"],
    )


def _trunk_parameters(hidden_dim, num_layers, intermediate_dim, **_):
    attention = 4 * (hidden_dim * hidden_dim + hidden_dim)
    mlp = 2 * hidden_dim * intermediate_dim + intermediate_dim + hidden_dim
    block = attention + mlp + 2 * 2 * hidden_dim  # two LayerNorms
    return num_layers * block + 2 * hidden_dim  # final LayerNorm


def count_parameters(config):
    """Parameter count of a backbone config, by arithmetic (nothing is built)."""
    v, t = config["vision"], config["text"]
    d = v["hidden_dim"]
    if v.get("image_size") is None:
        positions = v["position_grid_size"] ** 2
    else:
        positions = (v["image_size"] // v["patch_size"]) ** 2
    vision = (v["patch_size"] ** 2 * 3 + 1) * d + positions * d + _trunk_parameters(**v)
    map_head = d + 4 * (d * d + d) + 2 * d + 2 * d * v["intermediate_dim"]
    vision += map_head + v["intermediate_dim"] + d
    text = (t["vocabulary_size"] + t["sequence_length"]) * t["hidden_dim"]
    text += _trunk_parameters(**t) + (t["hidden_dim"] + 1) * t["projection_dim"]
    return vision + text + 2  # + log temperature and bias


def locca_decoder_parameters(text, num_coordinate_bins=1000, vision_width=None):
    """Parameters of the LocCa decoder `SigLIP2` attaches for a text-tower config
    (`max(1, depth // 2)` layers, tied output projection), by arithmetic.
    `vision_width`: the image tower's width when the decoder adds memory
    positions (the default in `SigLIP2`), None without them."""
    from keras_siglip2.models.heads import POSITION_FREQUENCIES

    d, f = text["hidden_dim"], text["intermediate_dim"]
    vocabulary = text["vocabulary_size"] + num_coordinate_bins
    attention = 4 * (d * d + d)
    block = 2 * attention + (2 * d * f + f + d) + 3 * 2 * d
    tables = (vocabulary + text["sequence_length"] + 3 + 1) * d + vocabulary
    memory_positions = 4 * POSITION_FREQUENCIES * vision_width if vision_width else 0
    return max(1, text["num_layers"] // 2) * block + 2 * d + tables + memory_positions


def checkpoint_parameters(name, locca=True, num_coordinate_bins=1000):
    """Training parameter count of a released architecture (alias or name):
    backbone plus, with `locca`, the LocCa decoder."""
    config = checkpoint_config(name)
    count = count_parameters(config)
    if locca:
        count += locca_decoder_parameters(
            config["text"], num_coordinate_bins, vision_width=config["vision"]["hidden_dim"]
        )
    return count


def training_state_bytes_per_device(
    parameters, num_shards=1, bytes_per_value=4, optimizer_slots=2
):
    """Bytes per device of weights, gradients and Adam's two moments (all float32,
    also under `mixed_bfloat16`) when every weight is split `num_shards` ways.

    Activations come on top and depend on the batch. Under
    `distribution.model_parallel` / `fully_sharded` the layout map shards all
    but the LayerNorms and a few biases (< 0.1 % of a So400m), so `num_shards`
    = number of devices is accurate to that; under `data_parallel` use 1.
    """
    return parameters * bytes_per_value * (2 + optimizer_slots) / num_shards


def list_presets(verbose=False):
    """The released checkpoints: full name, short aliases and parameter count.

    Returns a list of dicts; `verbose=True` also prints a table.
    """
    rows = []
    for name, facts in CHECKPOINTS.items():
        aliases = sorted(a for a, target in ALIASES.items() if target == name)
        rows.append(
            dict(
                name=name,
                aliases=aliases,
                parameters=count_parameters(checkpoint_config(name)),
                image_size=facts["image_size"] or "NaFlex",
                patch_size=facts["patch_size"],
                hf_repo=facts["hf_repo"],
                kaggle_handle=facts["kaggle_handle"],
            )
        )
    if verbose:
        print(f"{'preset':34s} {'params':>15s}  aliases")
        for row in rows:
            print(f"{row['name']:34s} {row['parameters']:>15,d}  {', '.join(row['aliases'])}")
    return rows
