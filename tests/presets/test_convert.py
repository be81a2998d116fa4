"""`convert(src, dst)`: any supported source → our preset directory."""

from pathlib import Path

import keras
import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.data import demo_vocabulary_path
from keras_siglip2.presets import convert, locate_preset
from tests.presets import checkpoints


def _same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), err_msg=x.path
        )


def test_convert_hf_directory_keeps_weights_and_tokenizer(tmp_path):
    src, dst = tmp_path / "hf", tmp_path / "ours"
    checkpoints.transformers_model(naflex=True).save_pretrained(src)
    spm = Path(demo_vocabulary_path()).read_bytes()  # a real SentencePiece model
    (src / "tokenizer.model").write_bytes(spm)
    assert convert(str(src), str(dst)) == str(dst)

    converted = locate_preset(str(dst))
    assert converted.format == "keras"
    assert converted.tokenizer_file == str(dst / "assets" / "tokenizer" / "vocabulary.spm")
    assert (dst / "assets/tokenizer/vocabulary.spm").read_bytes() == spm
    _same_weights(SigLIP2Backbone.from_preset(str(src)), SigLIP2Backbone.from_preset(str(dst)))


def test_convert_big_vision_npz(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False), stacked=True)
    np.savez(tmp_path / "bv.npz", **params)
    convert(str(tmp_path / "bv.npz"), str(tmp_path / "out"))
    loaded = SigLIP2Backbone.from_preset(str(tmp_path / "out"))
    np.testing.assert_array_equal(
        loaded.text_encoder.head.kernel.numpy(), params["params/txt/head/kernel"]
    )
    assert locate_preset(str(tmp_path / "out")).tokenizer_file is None


def test_convert_refuses_to_overwrite(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    np.savez(tmp_path / "bv.npz", **params)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        convert(str(tmp_path / "bv.npz"), str(tmp_path / "out"))
