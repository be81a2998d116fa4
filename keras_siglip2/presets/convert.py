"""`convert(src, dst)`: any supported checkpoint → our preset directory
(the `siglip2 convert SRC DST` command)."""

import os


def convert(src, dst, dtype=None, overwrite=False):
    """Load `src` (a name, alias, handle, directory or `.npz`) and write it to
    `dst` as our preset: the backbone (`config.json`, `model.weights.h5`,
    `metadata.json`), the preprocessor (tokenizer with the source's
    SentencePiece model at `assets/tokenizer/vocabulary.spm`, image converter)
    and any training heads the source carries.

    Returns the path of `dst`. Loading `dst` back with `SigLIP2.from_preset`
    or `SigLIP2Backbone.from_preset` gives bit-identical weights.
    """
    from keras_siglip2.models.siglip2 import SigLIP2

    dst = os.path.abspath(os.path.expanduser(dst))
    if os.path.exists(dst) and os.listdir(dst) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty; pass overwrite=True to replace it.")
    model = SigLIP2.from_preset(src, dtype=dtype)
    model.save_to_preset(dst)
    return dst
