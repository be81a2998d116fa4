"""SigLIP2Preprocessor: model-ready dicts eagerly and in tf.data, saving."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_siglip2 as ks
from keras_siglip2 import configs
from keras_siglip2.preprocessing import NaFlexImageConverter
from keras_siglip2.preprocessing import SigLIP2ImageConverter
from keras_siglip2.preprocessing import SigLIP2Preprocessor
from keras_siglip2.preprocessing import SigLIP2Tokenizer
from tests.preprocessing.conftest import write_backbone_config

TEXTS = ["a photo of a cat", "Ein Hund", ""]


@pytest.fixture(scope="module")
def tokenizer(spm_model):
    return SigLIP2Tokenizer(spm_model, sequence_length=16)


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.slow  # builds and runs two tiny backbones
@pytest.mark.parametrize("naflex", [False, True])
def test_outputs_feed_the_tiny_backbone(tokenizer, photos, naflex):
    config = configs.tiny(naflex=naflex)
    converter = NaFlexImageConverter(8, 16) if naflex else SigLIP2ImageConverter(32)
    preprocessor = SigLIP2Preprocessor(tokenizer, converter)
    inputs = preprocessor({"images": [photos["coffee"], photos["chelsea"]], "texts": TEXTS})
    image_keys = {"patches", "patch_mask", "spatial_shapes"} if naflex else {"images"}
    assert set(inputs) == image_keys | {"token_ids"}
    np.testing.assert_array_equal(np_(inputs["token_ids"]), np_(tokenizer(TEXTS)))
    backbone = ks.SigLIP2Backbone.from_config(config)
    outputs = backbone(inputs)
    assert tuple(outputs["logits"].shape) == (2, 3)


def test_either_key_may_be_absent(tokenizer, photos):
    preprocessor = SigLIP2Preprocessor(tokenizer, SigLIP2ImageConverter(32))
    assert set(preprocessor({"texts": "a cat"})) == {"token_ids"}
    assert tuple(preprocessor({"texts": "a cat"})["token_ids"].shape) == (16,)
    assert set(preprocessor({"images": photos["coffee"]})) == {"images"}
    text_only = SigLIP2Preprocessor(tokenizer=tokenizer)
    assert set(text_only({"texts": TEXTS})) == {"token_ids"}


def test_tf_data_map_with_labels_equals_eager(tokenizer, photos):
    preprocessor = SigLIP2Preprocessor(tokenizer, NaFlexImageConverter(16, 64))
    images = np.stack([photos["coffee"], photos["coffee"][::-1]])
    x = {"images": images, "texts": TEXTS[:2]}
    eager = preprocessor(x)
    dataset = tf.data.Dataset.from_tensor_slices((x, [1, 0])).map(preprocessor).batch(2)
    got_x, got_y = next(iter(dataset))
    assert got_y.numpy().tolist() == [1, 0]
    for key in eager:
        np.testing.assert_array_equal(got_x[key].numpy(), np_(eager[key]))
    # Already-batched elements work too.
    batched = tf.data.Dataset.from_tensor_slices(x).batch(2).map(preprocessor)
    np.testing.assert_array_equal(next(iter(batched))["patches"].numpy(), np_(eager["patches"]))


def test_serialization_and_preset_round_trip(tokenizer, photos, tmp_path):
    preprocessor = SigLIP2Preprocessor(tokenizer, NaFlexImageConverter(16, 64))
    config = keras.saving.serialize_keras_object(preprocessor)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored.image_converter, NaFlexImageConverter)
    assert restored.tokenizer.sequence_length == 16
    preset = str(tmp_path / "preset")
    preprocessor.save_to_preset(preset)
    for name in ["preprocessor.json", "tokenizer.json", "image_converter.json",
                 os.path.join("assets", "tokenizer", "vocabulary.spm")]:
        assert os.path.isfile(os.path.join(preset, name)), name
    write_backbone_config(preset)
    loaded = SigLIP2Preprocessor.from_preset(preset)
    x = {"images": [photos["chelsea"]], "texts": ["a cat"]}
    want, got = preprocessor(x), loaded(x)
    for key in want:
        np.testing.assert_array_equal(np_(got[key]), np_(want[key]))


def test_errors(tokenizer):
    preprocessor = SigLIP2Preprocessor(tokenizer=tokenizer)
    with pytest.raises(TypeError, match="dict"):
        preprocessor(["a cat"])
    with pytest.raises(ValueError, match="keys"):
        preprocessor({"prompts": ["a cat"]})
    with pytest.raises(ValueError, match="no image converter"):
        preprocessor({"images": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match="tokenizer"):
        SigLIP2Preprocessor()


@pytest.mark.backends
def test_eager_outputs_are_backend_tensors(tokenizer, photos):
    preprocessor = SigLIP2Preprocessor(tokenizer, SigLIP2ImageConverter(32))
    out = preprocessor({"images": [photos["coffee"]], "texts": ["a cat"]})
    assert all(keras.ops.is_tensor(v) for v in out.values())
    assert tuple(out["images"].shape) == (1, 32, 32, 3)
    assert tuple(out["token_ids"].shape) == (1, 16)
