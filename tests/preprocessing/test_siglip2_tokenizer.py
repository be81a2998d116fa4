"""SigLIP2Tokenizer: parity with transformers, packing rules, tf.data, saving."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2.preprocessing import SigLIP2Tokenizer
from keras_siglip2.preprocessing import canonicalize_text
from tests.preprocessing.conftest import CORPUS
from tests.preprocessing.conftest import write_backbone_config

LENGTH = 64
EXTRA = [
    "",
    "   ",
    "a",
    "A PHOTO OF A CAT",
    "Ein Hund  spielt,\t2024!",
    "x\tY\nz",
    "emoji ☃ 🐱 and unseen Ꮳ letters",
    "Ärger ÜBER Öl",
]


@pytest.fixture(scope="module")
def tokenizer(spm_model):
    return SigLIP2Tokenizer(spm_model)


def np_ids(x):
    return keras.ops.convert_to_numpy(x)


def test_packing_no_bos_eos_and_padding(tokenizer):
    ids = np_ids(tokenizer("a photo of a cat"))
    assert ids.shape == (LENGTH,) and ids.dtype == np.int32
    body = tokenizer._sentence_piece_spm.Encode("a photo of a cat")
    n = len(body)
    assert ids[:n].tolist() == body
    assert ids[n] == tokenizer.end_token_id == 1
    assert (ids[n + 1:] == tokenizer.pad_token_id).all() and tokenizer.pad_token_id == 0
    assert tokenizer.start_token_id == 2 and tokenizer.unknown_token_id == 3
    assert 2 not in ids.tolist()


def test_empty_string_is_eos_then_padding(tokenizer):
    ids = np_ids(tokenizer(""))
    assert ids.tolist() == [1] + [0] * (LENGTH - 1)


def test_long_text_is_cut_with_sticky_eos(tokenizer):
    words = " ".join(CORPUS[i % len(CORPUS)].split()[0] for i in range(500))
    assert len(words.split()) == 500
    ids = np_ids(tokenizer(words))
    body = tokenizer._sentence_piece_spm.Encode(canonicalize_text(words, "lower"))
    assert len(body) > LENGTH
    assert ids.shape == (LENGTH,)
    assert ids[:63].tolist() == body[:63]
    assert ids[63] == 1
    short = np_ids(SigLIP2Tokenizer(tokenizer.proto, sequence_length=8)(words))
    assert short.tolist() == body[:7] + [1]


def test_eval_canonicalisation_makes_variants_identical(tokenizer):
    ev = SigLIP2Tokenizer(tokenizer.proto, canonicalize="eval")
    variants = ["a photo of a cat", "A Photo of a CAT!", "  a photo, of a cat. ", "a_photo_of_a_cat"]
    ids = np_ids(ev(variants))
    for row in ids[1:]:
        np.testing.assert_array_equal(row, ids[0])
    # The default canonicalisation keeps punctuation, so these differ.
    assert not np.array_equal(np_ids(tokenizer(variants[1])), ids[0])


def test_shapes_of_input_forms(tokenizer):
    single = np_ids(tokenizer("a cat"))
    batch = np_ids(tokenizer(["a cat", "ein hund"]))
    assert batch.shape == (2, LENGTH)
    np.testing.assert_array_equal(batch[0], single)
    np.testing.assert_array_equal(np_ids(tokenizer(("a cat", "ein hund"))), batch)
    np.testing.assert_array_equal(np_ids(tokenizer(np.array(["a cat", "ein hund"]))), batch)
    np.testing.assert_array_equal(np_ids(tokenizer(tf.constant(["a cat", "ein hund"]))), batch)
    np.testing.assert_array_equal(np_ids(tokenizer(b"a cat")), single)
    nested = np_ids(tokenizer([["a cat", "ein hund"], ["x", "y"]]))
    assert nested.shape == (2, 2, LENGTH)
    np.testing.assert_array_equal(nested[0], batch)
    assert np_ids(tokenizer([])).shape == (0, LENGTH)


def test_tf_data_map_equals_eager(tokenizer):
    texts = CORPUS + EXTRA
    eager = np_ids(tokenizer(texts))
    unbatched = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    assert unbatched.element_spec.shape == (LENGTH,)
    np.testing.assert_array_equal(np.stack([x.numpy() for x in unbatched]), eager)
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(5).map(tokenizer)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x in batched]), eager)
    # The TensorFlow path run eagerly gives the same ids as well.
    tf_path = SigLIP2Tokenizer(tokenizer.proto, _allow_python_workflow=False)
    np.testing.assert_array_equal(np_ids(tf_path(texts)), eager)


@pytest.mark.parametrize("mode", ["eval", "lower_unicode"])
def test_tf_data_map_equals_eager_other_modes(tokenizer, mode):
    tok = SigLIP2Tokenizer(tokenizer.proto, canonicalize=mode)
    texts = CORPUS + EXTRA
    graph = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts)).map(tok)
    np.testing.assert_array_equal(next(iter(graph)).numpy(), np_ids(tok(texts)))


def test_detokenize_round_trip(tokenizer):
    assert tokenizer.detokenize(tokenizer("a photo of a cat")) == "a photo of a cat"
    assert tokenizer.detokenize(tokenizer(["ein hund", ""])) == ["ein hund", ""]


def test_config_and_assets_round_trip(tokenizer, tmp_path):
    tok = SigLIP2Tokenizer(tokenizer.proto, sequence_length=16, canonicalize="eval")
    config = keras.saving.serialize_keras_object(tok)
    assert config["registered_name"] == "keras_siglip2>SigLIP2Tokenizer"
    json.dumps(config)  # plain JSON, no bytes
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.sequence_length == 16 and restored.canonicalize == "eval"
    tok.save_assets(str(tmp_path))
    restored.load_assets(str(tmp_path))
    texts = ["A Photo_of a CAT!", "ein hund"]
    np.testing.assert_array_equal(np_ids(restored(texts)), np_ids(tok(texts)))


def test_keras_hub_preset_directory_round_trip(tokenizer, tmp_path):
    preset = str(tmp_path / "preset")
    tok = SigLIP2Tokenizer(tokenizer.proto, canonicalize="lower_unicode")
    tok.save_to_preset(preset)
    assert os.path.isfile(os.path.join(preset, "tokenizer.json"))
    assert os.path.isfile(os.path.join(preset, "assets", "tokenizer", "vocabulary.spm"))
    write_backbone_config(preset)
    loaded = SigLIP2Tokenizer.from_preset(preset)
    assert isinstance(loaded, SigLIP2Tokenizer) and loaded.canonicalize == "lower_unicode"
    assert loaded.proto == tok.proto
    np.testing.assert_array_equal(np_ids(loaded(CORPUS)), np_ids(tok(CORPUS)))


def test_errors(tokenizer, tmp_path):
    for bad in [None, 3, ["a", None], np.zeros(3), [["a"], ["b", "c"]]]:
        with pytest.raises(TypeError, match="string"):
            tokenizer(bad)
    with pytest.raises(TypeError, match="dtype"):
        tf.data.Dataset.from_tensor_slices([1, 2]).map(tokenizer)
    with pytest.raises(ValueError, match="canonicalize"):
        SigLIP2Tokenizer(tokenizer.proto, canonicalize="upper")
    with pytest.raises(ValueError, match="sequence_length"):
        SigLIP2Tokenizer(tokenizer.proto, sequence_length=0)
    with pytest.raises(ValueError, match="add_bos"):
        SigLIP2Tokenizer(tokenizer.proto, add_bos=True)


def test_vocabulary_without_gemma_special_pieces_is_rejected(tmp_path):
    import sentencepiece as spm

    prefix = str(tmp_path / "t5_like")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 5), model_prefix=prefix, vocab_size=200,
        model_type="bpe", minloglevel=2, character_coverage=1.0,
    )
    with pytest.raises(ValueError, match="special token"):
        SigLIP2Tokenizer(prefix + ".model")


@pytest.mark.backends
def test_eager_outputs_are_backend_int32_tensors(tokenizer):
    out = tokenizer(["a photo of a cat", ""])
    assert keras.ops.is_tensor(out)
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    assert tuple(out.shape) == (2, LENGTH)
    assert keras.ops.convert_to_numpy(out)[1].tolist() == [1] + [0] * (LENGTH - 1)
