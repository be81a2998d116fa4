"""`load_backbone(preset)`: any supported preset → `SigLIP2Backbone`.

Weights are streamed into a freshly built model one tensor at a time,
largest first. When weights are loaded, the model is built with zero
placeholders instead of random initialisers (every variable is then
overwritten — checked), which saves the random-init time and memory; on JAX
the placeholders are shared per shape, so the model's memory grows as the
tensors arrive. Measured on So400m/14 (4.23 GiB of float32) with JAX, peak
RSS above the import baseline: big_vision `.npz` ≈ 1.07× the model; the
keras-hub path ≈ 1.6× (keras-hub's model is loaded in full and freed tensor
by tensor as ours fills up). See benchmarks/convert_memory.py."""

import contextlib
import json
import os
import warnings

import keras

from keras_siglip2 import configs
from keras_siglip2.presets.big_vision import (
    NpzReader,
    big_vision_weight_map,
    config_from_big_vision,
    unused_keys,
)
from keras_siglip2.presets.huggingface import config_from_transformers, transformers_weight_map
from keras_siglip2.presets.keras_hub_siglip import config_from_keras_hub, keras_hub_weight_map
from keras_siglip2.presets.resolver import (
    KERAS_SHARDED_WEIGHTS_FILE,
    KERAS_WEIGHTS_FILE,
    locate_preset,
)
from keras_siglip2.presets.safetensors_reader import SafetensorsReader
from keras_siglip2.presets.weights import load_entries


class _SharedZeros:
    """Initializer giving every variable of one shape and dtype the same
    zero array (JAX arrays are immutable and `assign` rebinds, so sharing is
    safe there): the placeholder model costs one array per distinct shape."""

    def __init__(self):
        self._cache = {}

    def __call__(self, shape, dtype=None):
        key = (tuple(shape), str(dtype))
        if key not in self._cache:
            self._cache[key] = keras.ops.zeros(shape, dtype=dtype)
        return self._cache[key]


@contextlib.contextmanager
def placeholder_initialization():
    """Within this context, new layer weights start as zero placeholders
    instead of their random initialisers — shared per shape on JAX, plain
    zeros elsewhere (TensorFlow copies initial values; torch assigns in
    place, so sharing would alias). Only for models whose every weight is
    loaded right after; not thread-safe (patches `keras.layers.Layer.add_weight`)."""
    original = keras.layers.Layer.add_weight
    placeholder = _SharedZeros() if keras.backend.backend() == "jax" else "zeros"

    def add_weight(self, *args, **kwargs):
        if len(args) > 1:
            args = (args[0], placeholder, *args[2:])
        else:
            kwargs["initializer"] = placeholder
        return original(self, *args, **kwargs)

    keras.layers.Layer.add_weight = add_weight
    try:
        yield
    finally:
        keras.layers.Layer.add_weight = original


def build_backbone(config, dtype=None, placeholders=False):
    """`SigLIP2Backbone` from our config dict; `placeholders` skips random init."""
    from keras_siglip2.models.backbone import SigLIP2Backbone

    context = placeholder_initialization() if placeholders else contextlib.nullcontext()
    with context:
        return SigLIP2Backbone(vision=config["vision"], text=config["text"], dtype=dtype)


def _check_alias_architecture(preset, config):
    """Warn when a released name resolved to weights of another architecture
    (a wrong entry in the checkpoint table would otherwise go unnoticed)."""
    if preset.name is None:
        return
    expected = configs.checkpoint_config(preset.name)
    keys = ("hidden_dim", "num_layers", "num_heads", "intermediate_dim", "patch_size", "image_size")
    got = {k: config["vision"].get(k) for k in keys}
    want = {k: expected["vision"].get(k) for k in keys}
    if got != want:
        warnings.warn(
            f"{preset.source} (for {preset.name}) holds an image tower {got}, but the "
            f"checkpoint table lists {want}. Loading what the preset holds.",
            stacklevel=3,
        )


def _wrap_unreadable(path, error):
    return ValueError(
        f"Cannot read the weights at {path} (corrupt or truncated file?): "
        f"{type(error).__name__}: {error}"
    )


# ----------------------------------------------------------------------------
# One loader per format.


def _keras_weights_files(preset):
    """Make sure the (possibly sharded) `.weights.h5` files are local."""
    try:
        return preset.file(KERAS_WEIGHTS_FILE)
    except OSError as error:  # absent, or not downloadable now: try the sharded form
        single_error = error
    try:
        index = preset.file(KERAS_SHARDED_WEIGHTS_FILE)
    except FileNotFoundError:
        if not isinstance(single_error, FileNotFoundError):
            raise single_error from None
        raise FileNotFoundError(
            f"{preset.source} has neither {KERAS_WEIGHTS_FILE} nor {KERAS_SHARDED_WEIGHTS_FILE}."
        ) from None
    with open(index, encoding="utf-8") as f:
        weight_map = json.load(f).get("weight_map", {})
    shards = set()
    for value in weight_map.values():
        shards.update(value if isinstance(value, list) else [value])
    for shard in sorted(shards):
        preset.file(shard)
    return index


def _load_keras(preset, load_weights, dtype):
    from keras_hub.models import Backbone

    from keras_siglip2.models.backbone import SigLIP2Backbone

    if load_weights:
        weights = _keras_weights_files(preset)
    context = placeholder_initialization() if load_weights else contextlib.nullcontext()
    try:
        with context:
            # keras-hub's own preset machinery reads our format.
            backbone = Backbone.from_preset(preset.path, load_weights=load_weights, dtype=dtype)
    except (OSError, KeyError) as error:
        if not load_weights:
            raise
        raise _wrap_unreadable(weights, error) from error
    if not isinstance(backbone, SigLIP2Backbone):
        raise ValueError(f"{preset.source} holds a {type(backbone).__name__}, not a SigLIP2Backbone.")
    return backbone


def _load_keras_hub(preset, load_weights, dtype):
    config = config_from_keras_hub(preset.config)
    _check_alias_architecture(preset, config)
    if not load_weights:
        return build_backbone(config, dtype)
    from keras_hub.models import SigLIPBackbone

    weights = _keras_weights_files(preset)
    try:
        with placeholder_initialization():
            reference = SigLIPBackbone.from_preset(preset.path, load_weights=True)
    except (OSError, KeyError) as error:
        raise _wrap_unreadable(weights, error) from error
    backbone = build_backbone(config, dtype, placeholders=True)
    entries, pairs = [], {}
    for i, (ours, theirs, transform) in enumerate(keras_hub_weight_map(backbone, reference)):
        name = f"{theirs.path}#{i}"  # paths repeat across the two towers
        pairs[name] = (theirs, ours)
        entries.append((ours, name, transform))
    copied = []

    def get_tensor(name):
        # The previous tensor is in our model now: free keras-hub's copy (JAX),
        # so the two models never both exist in full.
        while copied:
            _free(*copied.pop())
        copied.append(pairs.pop(name))
        return keras.ops.convert_to_numpy(copied[-1][0].value)

    load_entries(backbone, entries, get_tensor, checkpoint=preset.source)
    del reference, pairs, copied
    return backbone


def _free(variable, copy):
    """Delete a JAX variable's single-device buffer once `copy` holds its
    value in a buffer of its own; a no-op on other backends."""
    if keras.backend.backend() != "jax":
        return
    value, kept = getattr(variable, "_value", None), getattr(copy, "_value", None)
    sharding = getattr(value, "sharding", None)
    if value is None or kept is None or sharding is None or len(sharding.device_set) != 1:
        return
    if value.unsafe_buffer_pointer() != kept.unsafe_buffer_pointer():
        value.delete()


# transformers writes only non-default values into config.json files (e.g. an
# empty-ish vision_config for B/16 at 224), so the class defaults fill the gaps:
# SiglipTextConfig, SiglipVisionConfig and Siglip2VisionConfig.
_TRANSFORMERS_TRUNK_DEFAULTS = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
)
_TRANSFORMERS_DEFAULTS = {
    "text_config": dict(_TRANSFORMERS_TRUNK_DEFAULTS, vocab_size=32000, max_position_embeddings=64),
    "vision_config": dict(_TRANSFORMERS_TRUNK_DEFAULTS, image_size=224, patch_size=16),
    "siglip2_vision_config": dict(_TRANSFORMERS_TRUNK_DEFAULTS, patch_size=16, num_patches=256),
}


def _transformers_config(preset):
    config = dict(preset.config)
    for part in ("text_config", "vision_config"):
        key = "siglip2_vision_config" if (
            part == "vision_config" and config.get("model_type") == "siglip2"
        ) else part
        config[part] = {**_TRANSFORMERS_DEFAULTS[key], **(config.get(part) or {})}
    for part in ("vision_config", "text_config"):
        c = config.get(part) or {}
        act = c.get("hidden_act", "gelu_pytorch_tanh")
        eps = c.get("layer_norm_eps", 1e-6)
        if act not in ("gelu_pytorch_tanh", "gelu_tanh", "gelu_new") or abs(eps - 1e-6) > 1e-12:
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


def _load_transformers(preset, load_weights, dtype):
    config = _transformers_config(preset)
    _check_alias_architecture(preset, config)
    if not load_weights:
        return build_backbone(config, dtype)
    reader = SafetensorsReader(lambda f: preset.file(f), preset.source)
    backbone = build_backbone(config, dtype, placeholders=True)
    keys = reader.keys()
    prefix = "" if "logit_scale" in keys else next(
        (k[: -len("logit_scale")] for k in keys if k.endswith(".logit_scale")), ""
    )
    entries = [
        (variable, prefix + name, transform)
        for variable, name, transform in transformers_weight_map(backbone)
    ]
    load_entries(backbone, entries, reader.get, checkpoint=preset.source)
    reader.close()
    return backbone


def _load_big_vision(preset, load_weights, dtype):
    reader = NpzReader(preset.path)
    try:
        config = config_from_big_vision(reader)
        if not load_weights:
            return build_backbone(config, dtype)
        backbone = build_backbone(config, dtype, placeholders=True)
        entries = big_vision_weight_map(backbone)
        extra = [k for k in unused_keys(reader, entries) if k.startswith(("params/img/", "params/txt/"))]
        if extra:
            warnings.warn(
                f"{preset.source}: {len(extra)} checkpoint arrays are not used, e.g. {extra[:3]}.",
                stacklevel=3,
            )
        # Read each stored array once even when compressed stacked layers are sliced.
        entries.sort(key=lambda entry: reader.storage_key(entry[1]))
        load_entries(backbone, entries, reader.get, checkpoint=preset.source)
        return backbone
    finally:
        reader.close()


_LOADERS = {
    "keras": _load_keras,
    "keras_hub": _load_keras_hub,
    "transformers": _load_transformers,
    "big_vision": _load_big_vision,
}


def _is_released_name(preset):
    if not isinstance(preset, str) or "://" in preset or os.path.exists(os.path.expanduser(preset)):
        return False
    try:
        configs.resolve_name(preset)
    except ValueError:
        return False
    return True


def load_backbone(preset, load_weights=True, dtype=None):
    """Build a `SigLIP2Backbone` from a preset and (by default) load its weights.

    Args:
      preset: a released checkpoint name or alias, a `kaggle://` / `hf://`
        handle, a local preset directory (ours, keras-hub SigLIP, Hugging Face
        `siglip`/`siglip2` safetensors), a big_vision `.npz` file, or a
        `Preset` from `locate_preset`.
      load_weights: False builds the architecture with random weights; for a
        released name this needs no network access at all.
      dtype: dtype policy of the model (e.g. "bfloat16"); weights are cast.
    """
    if not load_weights and _is_released_name(preset):
        return build_backbone(configs.checkpoint_config(preset), dtype)
    located = locate_preset(preset)
    return _LOADERS[located.format](located, load_weights, dtype)

