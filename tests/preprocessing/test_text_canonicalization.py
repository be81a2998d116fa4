"""Canonicalisation modes, and Python ↔ tf.data-graph equality."""

import re
import string

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2.preprocessing import canonicalize_text
from keras_siglip2.preprocessing.text import _WHITESPACE_RANGES
from tests.preprocessing.conftest import CORPUS

MODES = ["lower", "lower_unicode", "eval", None]


def big_vision_eval_reference(text):
    """big_vision's zero-shot canonicalisation, written out independently."""
    text = text.replace("_", " ")
    text = text.translate(str.maketrans("", "", string.punctuation))
    text = text.lower()
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def samples():
    rng = np.random.default_rng(0)
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x2000, 0x206F),
              (0x3000, 0x30FF), (0x1F300, 0x1F64F), (0x09, 0x0D)]
    out = list(CORPUS) + [
        "  A Photo_of  a CAT!!  ", "___", "", " ", "İstanbul", "ΟΔΟΣ, Σ.", "Straße ẞ",
        "x\x1c\x1dy\x85z\u3000w\u00a0v", "it's (a) [test] {2} <3> @#$%^&*~`|\\/",
    ]
    for _ in range(300):
        chars = []
        for _ in range(int(rng.integers(0, 40))):
            lo, hi = ranges[int(rng.integers(len(ranges)))]
            chars.append(chr(int(rng.integers(lo, hi + 1))))
        out.append("".join(chars))
    return out


def test_whitespace_class_is_pythons_isspace():
    listed = {chr(c) for a, b in _WHITESPACE_RANGES for c in range(a, b + 1)}
    assert listed == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_modes_on_examples():
    text = "  Ein_Hund, ÄRGER!  Die\tKATZE. "
    assert canonicalize_text(text, "lower") == "  ein_hund, Ärger!  die\tkatze. "
    assert canonicalize_text(text, "lower_unicode") == "  ein_hund, ärger!  die\tkatze. "
    assert canonicalize_text(text, "eval") == "ein hund ärger die katze"
    assert canonicalize_text(text, None) == text
    assert canonicalize_text(text, "none") == text
    assert canonicalize_text(["A", b"B"], "lower") == ["a", "b"]


def test_eval_mode_equals_big_vision_canonicalisation():
    texts = samples()
    assert canonicalize_text(texts, "eval") == [big_vision_eval_reference(t) for t in texts]


def test_lower_is_ascii_only_like_tf_strings_lower_default():
    # big_vision's training-time `lower` op is tf.strings.lower(text), which
    # only maps A-Z; the released models never saw lower-cased "Ä" or "Д".
    texts = samples()
    expected = [t.decode() for t in tf.strings.lower(tf.constant(texts)).numpy()]
    assert canonicalize_text(texts, "lower") == expected
    assert canonicalize_text("ÄÖÜ ДОМ ABC", "lower") == "ÄÖÜ ДОМ abc"


@pytest.mark.parametrize("mode", MODES)
def test_python_and_tf_data_graph_give_identical_strings(mode):
    texts = samples()
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(64)
    ds = ds.map(lambda t: canonicalize_text(t, mode))
    graph = [s.decode() for batch in ds for s in batch.numpy()]
    assert graph == canonicalize_text(texts, mode)
    eager = canonicalize_text(tf.constant(texts), mode)
    assert [s.decode() for s in eager.numpy()] == graph


def test_numpy_input_keeps_shape():
    out = canonicalize_text(np.array([["A B", "C_D"]]), "eval")
    assert out.shape == (1, 2)
    assert out.tolist() == [["a b", "c d"]]


def test_bad_mode_and_types():
    with pytest.raises(ValueError, match="canonicalize"):
        canonicalize_text("a", "upper")
    with pytest.raises(TypeError):
        canonicalize_text(None)
    with pytest.raises(TypeError):
        canonicalize_text(["a", 3])
    with pytest.raises(TypeError):
        canonicalize_text(tf.constant([1, 2]))
