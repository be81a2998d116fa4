"""`load_backbone(cls, preset)`: any supported preset → a `cls` backbone.

`cls` is the class whose `from_preset` was called (`SigLIP2Backbone` or a
subclass), passed down as keras-hub does, so this package depends on
`models/` and not the other way round.

Weights are streamed into the model one tensor at a time, largest first,
and every variable is assigned (checked). On JAX the model is built without
values (`weights.build_without_values`: no random initialisation, nothing
allocated), so its memory grows as the tensors arrive. Measured on
So400m/14 (4.23 GiB of float32) with JAX, peak RSS above the import
baseline: big_vision `.npz` 1.16–1.28× the model over three runs (the zero
placeholders this replaced: 1.20–1.32× on the same machine); the keras-hub
path ≈ 1.6× (measured with the placeholders: keras-hub's model is loaded in
full and freed tensor by tensor as ours fills up). See
benchmarks/convert_memory.py."""

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
from keras_siglip2.presets.huggingface import (
    load_transformers_weights,
    transformers_preset_config,
)
from keras_siglip2.presets.keras_hub_siglip import config_from_keras_hub, keras_hub_weight_map
from keras_siglip2.presets.legacy import upgraded_keras_weights
from keras_siglip2.presets.resolver import (
    KERAS_SHARDED_WEIGHTS_FILE,
    KERAS_WEIGHTS_FILE,
    locate_preset,
)
from keras_siglip2.presets.safetensors_reader import SafetensorsReader
from keras_siglip2.presets.weights import (
    build_without_values,
    check_assigned,
    check_finite,
    load_entries,
)


def build_backbone(cls, config, dtype=None):
    """A `cls` backbone with initial weights from our config dict."""
    return cls(vision=config["vision"], text=config["text"], dtype=dtype)


def _backbone(cls, config, dtype, load_weights):
    """`build_backbone`, without values when a checkpoint fills it next."""
    if not load_weights:
        return build_backbone(cls, config, dtype)
    return build_without_values(lambda: build_backbone(cls, config, dtype))


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
    """Make sure the (possibly sharded) `.weights.h5` files are local; returns
    (the path to load, the `.h5` files holding the arrays)."""
    try:
        single = preset.file(KERAS_WEIGHTS_FILE)
        return single, [single]
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
    return index, [preset.file(shard) for shard in sorted(shards)]


def _stored_array_count(files):
    """Arrays of the model (not of an optimizer) in Keras `.weights.h5` files."""
    import h5py

    count = 0
    for path in files:
        with h5py.File(path, "r") as f:
            names = []
            f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
            count += sum(not name.startswith("optimizer/") for name in names)
    return count


def _build_keras_preset(preset, dtype=None):
    """The backbone a Keras preset's `config.json` describes (ours or
    keras-hub's). A quantized model keeps its per-layer dtype policies
    (keras-hub's `from_preset` would replace them with `dtype`) unless `dtype`
    is given; a config that cannot be built (a wrong type, a bad `dtype`) is a
    `ValueError` naming the file."""
    config_file = os.path.join(preset.path, "config.json")
    config = dict(preset.config)
    if dtype is not None:
        config["config"] = {**config["config"], "dtype": dtype}
    try:
        stored_dtype = config.get("config", {}).get("dtype")
        if stored_dtype is not None:
            keras.dtype_policies.get(stored_dtype)
        return keras.saving.deserialize_keras_object(config)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{config_file} ({preset.source}) does not describe a model that can be built: "
            f"{type(error).__name__}: {str(error)[:300].rstrip('. ')}. Fix the file, or re-save the "
            "preset with `save_to_preset`."
        ) from error


def _from_keras_preset(preset, load_weights, dtype=None):
    """A keras-hub `Backbone` subclass from a Keras preset directory (ours or
    keras-hub's): built from its config (without values when loading
    weights), its `.weights.h5` read by Keras after checking it holds one
    array per variable (Keras would skip a layer missing from `config.json`
    without a word)."""
    if not load_weights:
        return _build_keras_preset(preset, dtype)
    weights, files = _keras_weights_files(preset)
    backbone = build_without_values(lambda: _build_keras_preset(preset, dtype))
    stored, expected = _stored_array_count(files), len(backbone.weights)
    if stored != expected:
        raise ValueError(
            f"{weights} holds {stored} arrays but the architecture in config.json has "
            f"{expected} variables ({preset.source}): the two files do not belong together "
            "(a config edited by hand, or files of two presets mixed?). Re-save the preset "
            "with `save_to_preset`, or restore its config.json."
        )
    try:
        with upgraded_keras_weights(weights) as current:
            backbone.load_weights(current)
    except (OSError, KeyError) as error:
        raise _wrap_unreadable(weights, error) from error
    except ValueError as error:
        raise ValueError(
            f"The weights at {weights} do not fit the architecture in config.json "
            f"({preset.source}): {str(error)[:300]}. Re-save the preset with `save_to_preset`."
        ) from error
    check_assigned(backbone, preset.source)
    return backbone


def _load_keras(cls, preset, load_weights, dtype):
    stored = keras.saving.get_registered_object(preset.config["registered_name"])
    if not (isinstance(stored, type) and issubclass(stored, cls)):
        raise ValueError(
            f"{preset.source} holds a Keras preset of {preset.config['registered_name']!r}, "
            f"not a {cls.__name__}."
        )
    backbone = _from_keras_preset(preset, load_weights, dtype)
    if load_weights:
        check_finite(backbone, preset.source)
    return backbone


def _load_keras_hub(cls, preset, load_weights, dtype):
    config = config_from_keras_hub(preset.config)
    _check_alias_architecture(preset, config)
    backbone = _backbone(cls, config, dtype, load_weights)
    if not load_weights:
        return backbone
    import keras_hub  # noqa: F401  (registers SigLIPBackbone for the config)

    reference = _from_keras_preset(preset, load_weights=True)
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


def _load_transformers(cls, preset, load_weights, dtype):
    config = transformers_preset_config(preset)
    _check_alias_architecture(preset, config)
    backbone = _backbone(cls, config, dtype, load_weights)
    if not load_weights:
        return backbone
    reader = SafetensorsReader(preset.file, preset.source)
    try:
        keys = reader.keys()
        prefix = "" if "logit_scale" in keys else next(
            (k[: -len("logit_scale")] for k in keys if k.endswith(".logit_scale")), ""
        )
        load_transformers_weights(backbone, reader.get, prefix, checkpoint=preset.source)
    finally:
        reader.close()
    return backbone


def _load_big_vision(cls, preset, load_weights, dtype):
    reader = NpzReader(preset.path)
    try:
        backbone = _backbone(cls, config_from_big_vision(reader), dtype, load_weights)
        if not load_weights:
            return backbone
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


def load_backbone(cls, preset, load_weights=True, dtype=None):
    """Build a `cls` backbone from a preset and (by default) load its weights.

    Args:
      cls: `SigLIP2Backbone` or a subclass (the class `from_preset` was called on).
      preset: a released checkpoint name or alias, a `kaggle://` / `hf://`
        handle, a local preset directory (ours, keras-hub SigLIP, Hugging Face
        `siglip`/`siglip2` safetensors), a big_vision `.npz` file, or a
        `Preset` from `locate_preset`.
      load_weights: False builds the architecture with random weights; for a
        released name this needs no network access at all.
      dtype: dtype policy of the model (e.g. "bfloat16"); weights are cast.
    """
    if dtype is not None:
        try:
            keras.dtype_policies.get(dtype)
        except ValueError as error:
            raise ValueError(
                f"`dtype` must be a dtype policy such as 'float32', 'bfloat16' or "
                f"'mixed_bfloat16'; got {dtype!r} ({error})"
            ) from None
    if not load_weights and _is_released_name(preset):
        return build_backbone(cls, configs.checkpoint_config(preset), dtype)
    located = locate_preset(preset)
    return _LOADERS[located.format](cls, located, load_weights, dtype)
