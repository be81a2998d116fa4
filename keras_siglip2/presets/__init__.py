"""Loading and converting SigLIP 2 checkpoints.

`load_backbone(cls, preset)` (what `SigLIP2Backbone.from_preset` calls)
takes a released name or alias, a `kaggle://` or `hf://` handle, a local
preset directory (ours, keras-hub SigLIP, Hugging Face safetensors) or a
big_vision `.npz`; `locate_preset` tells where a preset is and in which
format (and where its tokenizer is); `convert(src, dst)` writes any of them
as our preset directory. This package uses `models/`; `models/` calls it
only when loading a preset (inside `from_preset`).
"""

from keras_siglip2.presets.big_vision import NpzReader, config_from_big_vision
from keras_siglip2.presets.convert import convert
from keras_siglip2.presets.hubs import PresetDownloadError
from keras_siglip2.presets.keras_hub_siglip import config_from_keras_hub
from keras_siglip2.presets.loader import load_backbone
from keras_siglip2.presets.resolver import Preset, cache_directories, locate_preset

__all__ = [
    "NpzReader",
    "Preset",
    "PresetDownloadError",
    "cache_directories",
    "config_from_big_vision",
    "config_from_keras_hub",
    "convert",
    "load_backbone",
    "locate_preset",
]
