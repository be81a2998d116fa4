"""The preprocessor that goes with a located preset (tokenizer + image converter)."""

import json
import os

from keras_siglip2.configs import TEXT_SEQUENCE_LENGTH

# Hugging Face `resample` codes (PIL enums) → tf.image.resize methods.
_RESAMPLE = {2: "bilinear", 3: "bicubic"}


def _image_converter(located, backbone):
    from keras_siglip2.preprocessing import NaFlexImageConverter, SigLIP2ImageConverter

    vision = backbone.vision_encoder
    settings = {}
    config_file = located.file("preprocessor_config.json", required=False)
    if located.format == "transformers" and config_file:
        with open(config_file) as f:
            settings = json.load(f)
    if vision.naflex:
        return NaFlexImageConverter(
            vision.patch_size, settings.get("max_num_patches", vision.max_num_patches)
        )
    method = _RESAMPLE.get(settings.get("resample"), "bilinear")
    return SigLIP2ImageConverter(vision.image_size, interpolation=method)


def load_preprocessor(located, backbone):
    """`SigLIP2Preprocessor` for `located` (a `resolver.Preset`).

    Our own presets store theirs; for keras-hub, Hugging Face and big_vision
    checkpoints it is assembled from the shipped SentencePiece model (if any)
    and the image settings. Returns None only if there is neither.
    """
    from keras_siglip2.preprocessing import SigLIP2Preprocessor, SigLIP2Tokenizer

    if located.format == "keras" and located.file("preprocessor.json", required=False):
        located.tokenizer_file  # fetched and checked (`Preset.file`) before keras-hub reads it
        try:
            return SigLIP2Preprocessor.from_preset(located.path)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(
                f"{located.source}: preprocessor.json does not describe a preprocessor that "
                f"can be built: {type(error).__name__}: {str(error)[:300].rstrip('. ')}. Fix the file, or "
                "re-save the preset with `save_to_preset`."
            ) from error
    tokenizer = None
    proto = located.tokenizer_file
    if proto and os.path.isfile(proto):
        text = backbone.text_encoder
        tokenizer = SigLIP2Tokenizer(
            proto=proto, sequence_length=getattr(text, "sequence_length", TEXT_SEQUENCE_LENGTH)
        )
    return SigLIP2Preprocessor(tokenizer, _image_converter(located, backbone))
