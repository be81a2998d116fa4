"""`convert(src, dst)`: any supported checkpoint → our preset directory
(the `siglip2 convert SRC DST` command)."""

import os
import shutil

from keras_siglip2.presets.loader import load_backbone
from keras_siglip2.presets.resolver import TOKENIZER_FILES, locate_preset


def convert(src, dst, dtype=None, overwrite=False):
    """Load `src` (a name, alias, handle, directory or `.npz`) and write it to
    `dst` as our preset: `config.json`, `model.weights.h5`, `metadata.json`,
    plus the source's SentencePiece model, if it ships one, at
    `assets/tokenizer/vocabulary.spm` (keras-hub's tokenizer asset layout).

    Returns the path of `dst`. Loading `dst` back with
    `SigLIP2Backbone.from_preset(dst)` gives bit-identical weights.
    """
    dst = os.path.abspath(os.path.expanduser(dst))
    if os.path.exists(dst) and os.listdir(dst) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty; pass overwrite=True to replace it.")
    preset = locate_preset(src)
    backbone = load_backbone(preset, load_weights=True, dtype=dtype)
    os.makedirs(dst, exist_ok=True)
    backbone.save_to_preset(dst)
    tokenizer = preset.tokenizer_file
    if tokenizer:
        target = os.path.join(dst, TOKENIZER_FILES["keras"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.abspath(tokenizer) != target:
            shutil.copyfile(tokenizer, target)
    return dst
