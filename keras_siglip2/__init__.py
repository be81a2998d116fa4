"""keras_siglip2: SigLIP 2 vision-language encoders for Keras 3.

Public names are imported on first use, so `siglip2 --backend ...` (and any
code) can choose `KERAS_BACKEND` after importing this package and before
Keras itself is imported.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "SigLIP2": "keras_siglip2.models.siglip2",
    "SigLIP2Backbone": "keras_siglip2.models.backbone",
    "SigLIP2TextEncoder": "keras_siglip2.models.text_encoder",
    "SigLIP2VisionEncoder": "keras_siglip2.models.vision_encoder",
    "list_presets": "keras_siglip2.configs",
}
# `demo` is the `siglip2 demo` command; the demo dataset it trains on is in `data`.
_SUBMODULES = (
    "callbacks", "configs", "data", "demo", "distribution", "evaluation", "export", "flop_model",
    "losses", "preprocessing", "presets", "training", "visualize",
)

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_siglip2.{name}")
    raise AttributeError(f"module 'keras_siglip2' has no attribute {name!r}")


def __dir__():
    return __all__
