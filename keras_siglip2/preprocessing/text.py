"""Text canonicalisation applied before tokenization.

Modes (the `canonicalize` argument of `SigLIP2Tokenizer`):

- `"lower"` (default): ASCII lowercasing (A–Z → a–z), nothing else. This is
  what the released checkpoints were trained with: big_vision's `lower` /
  `tokenize(lower=True)` ops call `tf.strings.lower` with its default
  (byte-wise, ASCII-only) encoding, so upper-case non-ASCII letters ("Ä",
  "Д", "Σ") were left as they are.
- `"lower_unicode"`: full Unicode lowercasing, like Hugging Face's
  `Siglip2Tokenizer` (a `Lowercase` normaliser). Use it for id-for-id parity
  with transformers on text with upper-case non-ASCII letters.
- `"eval"`: big_vision's zero-shot canonicalisation of class names and
  prompts: map "_" to " ", delete ASCII punctuation (`string.punctuation`),
  Unicode lowercase, collapse every run of whitespace to one space, strip.
- `None` (or `"none"`): leave the text unchanged.

Every mode has a pure-Python implementation (`canonicalize_text` on `str`)
and a TensorFlow one (`canonicalize_text` on a `tf.string` tensor, graph and
`tf.data` safe) that give the same strings. Known limit: Unicode lowercasing
uses Python's Unicode tables on one side and TensorFlow's ICU on the other;
the two agree on every character except ~40 letters added in Unicode 14
(e.g. U+2C2F, U+A7C0, the Vithkuqi script), which TensorFlow leaves unchanged.
"""

import re
import string

import numpy as np
import tensorflow as tf

CANONICALIZE_MODES = ("lower", "lower_unicode", "eval", None)

# `string.punctuation`, each character escaped, as one regex character class.
# The same pattern text works in Python's `re` and in RE2 (tf.strings).
_PUNCTUATION_CLASS = "[" + "".join("\\" + c for c in string.punctuation) + "]"

# Every code point for which `str.isspace()` is true (what Python's `\s`
# matches in a `str` pattern). RE2's `\s` is ASCII-only, so both sides spell
# the class out explicitly, as (first, last) code point ranges.
_WHITESPACE_RANGES = (
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
_WHITESPACE_CLASS = "[" + "".join(
    chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in _WHITESPACE_RANGES
) + "]"
_WHITESPACE_RUNS = _WHITESPACE_CLASS + "+"
_EDGE_SPACES = "^ +| +$"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_PUNCTUATION_RE = re.compile(_PUNCTUATION_CLASS)
_WHITESPACE_RE = re.compile(_WHITESPACE_RUNS)
_EDGE_SPACES_RE = re.compile(_EDGE_SPACES)


def check_mode(mode):
    """Return the canonical spelling of `mode`, or raise a clear `ValueError`."""
    if mode == "none":
        return None
    if mode not in CANONICALIZE_MODES:
        raise ValueError(
            f"`canonicalize` must be one of {list(CANONICALIZE_MODES)}; got {mode!r}."
        )
    return mode


def _canonicalize_str(text, mode):
    if mode is None:
        return text
    if mode == "lower":
        return text.translate(_ASCII_LOWER)
    if mode == "lower_unicode":
        return text.lower()
    # "eval": big_vision's order (underscore first, so "a_b" → "a b").
    text = text.replace("_", " ")
    text = _PUNCTUATION_RE.sub("", text)
    text = text.lower()
    text = _WHITESPACE_RE.sub(" ", text)
    return _EDGE_SPACES_RE.sub("", text)


def canonicalize_text_tf(texts, mode="lower"):
    """Canonicalise a `tf.string` tensor of any shape with `tf.strings` ops."""
    mode = check_mode(mode)
    texts = tf.convert_to_tensor(texts)
    if texts.dtype != tf.string:
        raise TypeError(f"Expected a tf.string tensor; got dtype {texts.dtype.name}.")
    if mode is None:
        return texts
    if mode == "lower":
        return tf.strings.lower(texts)  # default encoding: ASCII only
    if mode == "lower_unicode":
        return tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, "_", " ")
    texts = tf.strings.regex_replace(texts, _PUNCTUATION_CLASS, "")
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, _WHITESPACE_RUNS, " ")
    return tf.strings.regex_replace(texts, _EDGE_SPACES, "")


def _as_str(x, where="text"):
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8")
    raise TypeError(
        f"Expected a string for {where}; got {type(x).__name__} ({x!r:.80})."
    )


def canonicalize_text(text, mode="lower"):
    """Canonicalise `text` (see the module docstring for the modes).

    Args:
        text: a `str`, a list/tuple of `str`, a NumPy array of strings, or a
            `tf.string` tensor (handled with `tf.strings` ops, so this also
            works inside `tf.data`).
        mode: `"lower"`, `"lower_unicode"`, `"eval"` or `None`.

    Returns:
        The same structure: `str`, `list` of `str`, NumPy array, or tensor.
    """
    mode = check_mode(mode)
    if isinstance(text, (tf.Tensor, tf.RaggedTensor)):
        if isinstance(text, tf.RaggedTensor):
            return tf.ragged.map_flat_values(canonicalize_text_tf, text, mode)
        return canonicalize_text_tf(text, mode)
    if isinstance(text, (str, bytes, np.bytes_)):
        return _canonicalize_str(_as_str(text), mode)
    if isinstance(text, (list, tuple)):
        return [canonicalize_text(t, mode) for t in text]
    if isinstance(text, np.ndarray):
        out = np.empty(text.shape, dtype=object)
        for index, value in np.ndenumerate(text):
            out[index] = _canonicalize_str(_as_str(value), mode)
        return out.astype(str)
    raise TypeError(
        "canonicalize_text expects a string, a list of strings, a NumPy array "
        f"of strings or a tf.string tensor; got {type(text).__name__}."
    )
