"""`SigLIP2.save_to_preset` / `from_preset`: backbone, preprocessor and heads."""

import json
from pathlib import Path

import keras
import numpy as np

from keras_siglip2 import SigLIP2, SigLIP2Backbone, configs
from keras_siglip2.data import demo_vocabulary_path, make_demo_examples
from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2Preprocessor,
    SigLIP2Tokenizer,
)
from tests.models.transformers_reference import randomize


def tiny_model():
    tokenizer = SigLIP2Tokenizer(proto=str(demo_vocabulary_path()), sequence_length=16)
    config = configs.tiny(naflex=True, vocabulary_size=tokenizer.vocabulary_size())
    preprocessor = SigLIP2Preprocessor(tokenizer, NaFlexImageConverter(8, 16))
    return SigLIP2(SigLIP2Backbone.from_config(config), preprocessor, num_coordinate_bins=20)


def test_round_trip_is_bit_exact_with_heads_and_preprocessing(tmp_path):
    model = tiny_model()
    model.save_to_preset(tmp_path / "preset")
    loaded = SigLIP2.from_preset(tmp_path / "preset")
    assert loaded.locca and loaded.decoder.num_coordinate_bins == 20
    assert len(loaded.weights) == len(model.weights)
    for ours, theirs in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), err_msg=ours.path
        )
    images = [e["image"] for e in make_demo_examples(3, split="test")]
    np.testing.assert_array_equal(model.embed_images(images), loaded.embed_images(images))
    texts = ["ein roter kreis", "赤い円", "A Blue Square!"]
    np.testing.assert_array_equal(model.text_inputs(texts), loaded.text_inputs(texts))


def test_preset_saved_before_memory_positions_keeps_its_plain_decoder(tmp_path):
    # Presets written before `decoder_memory_positions` existed have no such
    # key and no memory-position weight: they load as the plain decoder.
    model = tiny_model()
    model.save_to_preset(tmp_path / "preset")
    assert SigLIP2.from_preset(tmp_path / "preset").decoder.memory_positions
    plain = SigLIP2(model.backbone, model.preprocessor, num_coordinate_bins=20,
                    decoder_memory_positions=False)
    plain.save_to_preset(tmp_path / "old")
    task_file = tmp_path / "old" / SigLIP2.TASK_CONFIG_FILE
    task = json.loads(task_file.read_text())
    del task["decoder_memory_positions"]
    task_file.write_text(json.dumps(task))
    loaded = SigLIP2.from_preset(tmp_path / "old")
    assert not loaded.decoder.memory_positions
    for ours, theirs in zip(plain.decoder.weights, loaded.decoder.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), err_msg=ours.path
        )


def test_hugging_face_directory_loads_with_its_tokenizer(tmp_path):
    from transformers import Siglip2Config, Siglip2Model

    tokenizer = SigLIP2Tokenizer(proto=str(demo_vocabulary_path()))
    widths = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config = Siglip2Config(
        text_config=dict(widths, vocab_size=tokenizer.vocabulary_size(), max_position_embeddings=64),
        vision_config=dict(widths, num_patches=16, patch_size=8),
    )
    reference = randomize(Siglip2Model(config))
    reference.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer.model").write_bytes(Path(demo_vocabulary_path()).read_bytes())
    model = SigLIP2.from_preset(tmp_path / "hf")
    assert model.decoder is None  # released checkpoints carry no training heads
    assert model.backbone.naflex
    images = [e["image"] for e in make_demo_examples(2, split="test")]
    probabilities = model.zero_shot(images, ["red circle", "blue square", "green star"])
    assert probabilities.shape == (2, 3)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    np.testing.assert_array_equal(
        model.text_inputs(["a red circle"]), tokenizer(["a red circle"])
    )
