"""Preprocessing: text canonicalisation, tokenizer, image loading and converters
(and, in `inputs`, the adapters from any collection of raw inputs to single items)."""

from keras_siglip2.preprocessing.image_converter import NaFlexImageConverter
from keras_siglip2.preprocessing.image_converter import SigLIP2ImageConverter
from keras_siglip2.preprocessing.image_converter import naflex_target_size
from keras_siglip2.preprocessing.image_converter import naflex_target_size_tf
from keras_siglip2.preprocessing.image_io import image_to_array
from keras_siglip2.preprocessing.image_io import load_image
from keras_siglip2.preprocessing.preprocessor import SigLIP2Preprocessor
from keras_siglip2.preprocessing.text import canonicalize_text
from keras_siglip2.preprocessing.tokenizer import SigLIP2Tokenizer

__all__ = [
    "NaFlexImageConverter",
    "SigLIP2ImageConverter",
    "SigLIP2Preprocessor",
    "SigLIP2Tokenizer",
    "canonicalize_text",
    "image_to_array",
    "load_image",
    "naflex_target_size",
    "naflex_target_size_tf",
]
