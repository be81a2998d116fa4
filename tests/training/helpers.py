"""Tiny models and batches shared by the training tests."""

import keras
import numpy as np

from keras_siglip2 import configs
from keras_siglip2.data import demo_vocabulary_path
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2ImageConverter,
    SigLIP2Preprocessor,
    SigLIP2Tokenizer,
)

SEQUENCE_LENGTH = 16
COORDINATE_BINS = 32
IMAGE_SIZE = 32
PATCH_SIZE = 8
MAX_NUM_PATCHES = 16
# Self-distillation / masked prediction at test size (8 local crops of 2×2 patches).
TINY_SELF_SUPERVISED = dict(
    num_prototypes=64, num_patch_prototypes=32, head_hidden_dim=32,
    head_bottleneck_dim=16, local_view_patches=2, teacher_momentum=0.9,
)


def tiny_model(naflex=False, seed=0, locca=True, self_supervised=None, dtype=None):
    """A freshly initialised tiny `SigLIP2` (demo vocabulary, 32 box bins),
    its backbone built with the dtype policy `dtype` (default: the global one);
    `seed=None` leaves the global seeds alone (for data-only tests).

    The seed is set *before* the tokenizer is made: `keras.utils.set_random_seed`
    calls `tf.random.set_seed`, which clears TensorFlow's kernel cache and with it
    the SentencePiece resource of any existing tokenizer (its next use in
    `tf.data` fails with "Resource ... SentencepieceOp ... does not exist").
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    tokenizer = SigLIP2Tokenizer(proto=str(demo_vocabulary_path()), sequence_length=SEQUENCE_LENGTH)
    config = configs.tiny(
        naflex=naflex, vocabulary_size=tokenizer.vocabulary_size(),
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
    )
    if naflex:
        converter = NaFlexImageConverter(PATCH_SIZE, MAX_NUM_PATCHES)
    else:
        converter = SigLIP2ImageConverter(IMAGE_SIZE)
    return SigLIP2(
        SigLIP2Backbone.from_config({**config, "dtype": dtype}),
        SigLIP2Preprocessor(tokenizer, converter),
        locca=locca,
        num_coordinate_bins=COORDINATE_BINS,
        self_supervised=self_supervised,
    )


def first_batch(dataset):
    """The first batch of a `tf.data` pipeline as a dict of NumPy arrays."""
    return {k: np.array(v) for k, v in next(iter(dataset)).items()}
