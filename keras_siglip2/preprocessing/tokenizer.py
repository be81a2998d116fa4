"""SigLIP 2 tokenizer: Gemma SentencePiece, no BOS, sticky EOS, right-padded."""

import numbers

import keras
import numpy as np
import tensorflow as tf
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs_python
from keras_hub.src.utils.tensor_utils import convert_to_numpy
from keras_hub.src.utils.tensor_utils import in_tf_function
from keras_hub.src.utils.tensor_utils import is_int_dtype
from keras_hub.src.utils.tensor_utils import preprocessing_function
from keras_hub.tokenizers import SentencePieceTokenizer

from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.preprocessing.text import _canonicalize_str
from keras_siglip2.preprocessing.text import canonicalize_text_tf
from keras_siglip2.preprocessing.text import check_mode

_EXPECTED = (
    "SigLIP2Tokenizer takes a string, a list/tuple of strings, a NumPy array "
    "of strings or a tf.string tensor"
)


def _to_python_texts(inputs):
    """`inputs` → (flat list of `str`, outer shape). Raises a clear TypeError."""

    def as_str(x, index=None):
        where = "" if index is None else f" at index {index}"
        if isinstance(x, (bytes, np.bytes_)):
            try:
                return bytes(x).decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"Text{where} is not valid UTF-8 ({error.reason} at byte {error.start}: "
                    f"{x!r:.60}). Decode it yourself, e.g. `data.decode('utf-8', 'replace')`."
                ) from None
        if not isinstance(x, str):
            raise TypeError(f"{_EXPECTED}; got {type(x).__name__} ({x!r:.60}){where}.")
        try:
            x.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"Text{where} is not valid Unicode: {error.reason} (U+{ord(x[error.start]):04X} "
                f"at position {error.start} of {x!r:.60}). Remove or replace it, e.g. "
                "`text.encode('utf-8', 'replace').decode('utf-8')`."
            ) from None
        return x

    if inputs is None:
        raise TypeError(f"{_EXPECTED}; got None.")
    if isinstance(inputs, (str, bytes, np.bytes_)):
        return [as_str(inputs)], ()
    if isinstance(inputs, tf.RaggedTensor):
        raise TypeError(f"{_EXPECTED}; got a tf.RaggedTensor (pass a dense tensor).")
    if isinstance(inputs, tf.Tensor):
        if inputs.dtype != tf.string:
            raise TypeError(f"{_EXPECTED}; got a tensor of dtype {inputs.dtype.name}.")
        inputs = convert_to_numpy(inputs)
    elif keras.ops.is_tensor(inputs):
        raise TypeError(f"{_EXPECTED}; got a numeric {type(inputs).__name__}.")
    if isinstance(inputs, (list, tuple)):
        if all(isinstance(x, (str, bytes, np.bytes_)) for x in inputs):
            return [as_str(x, i) for i, x in enumerate(inputs)], (len(inputs),)
        if not any(isinstance(x, (list, tuple, np.ndarray)) for x in inputs):
            # A flat list with a non-string item: name it.
            return [as_str(x, i) for i, x in enumerate(inputs)], (len(inputs),)
        try:
            inputs = np.asarray(inputs)
        except ValueError as e:
            raise TypeError(f"{_EXPECTED}; nested lists must be rectangular.") from e
    if isinstance(inputs, np.ndarray):
        if inputs.dtype.kind not in "USO":
            raise TypeError(f"{_EXPECTED}; got a NumPy array of dtype {inputs.dtype}.")
        flat = [as_str(x, i) for i, x in enumerate(inputs.reshape(-1).tolist())]
        return flat, inputs.shape
    raise TypeError(f"{_EXPECTED}; got {type(inputs).__name__}.")


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2Tokenizer(SentencePieceTokenizer):
    """Gemma SentencePiece tokenizer with SigLIP 2's packing rules.

    Each text is canonicalised (`canonicalize`, default `"lower"`, see
    `keras_siglip2.preprocessing.text`), tokenized with SentencePiece (no BOS),
    followed by EOS, cut to `sequence_length` keeping EOS as the last token
    ("sticky" EOS) and right-padded with the pad id to exactly
    `sequence_length`. The text tower pools the last position, so the length
    must be the one the model was trained with (64); never pad to the longest
    text in a batch.

    Built on `keras_hub.tokenizers.SentencePieceTokenizer`: eager calls run
    the `sentencepiece` library and return backend tensors; inside `tf.data`
    (or any `tf.function`) the same ids come from `tensorflow-text` ops and
    the outputs are `tf.Tensor`s. The vocabulary is saved as a keras-hub asset
    (`assets/tokenizer/vocabulary.spm` in a preset directory).

    Args:
        proto: path to, or bytes of, a SentencePiece model with the Gemma
            special pieces `<pad>`, `<eos>`, `<bos>`, `<unk>` (ids 0, 1, 2, 3
            in the released vocabulary; the ids are read from the model).
        sequence_length: output length, default 64.
        canonicalize: `"lower"` (default), `"lower_unicode"`, `"eval"` or
            `None`.

    Call:
        A `str` gives `(sequence_length,)` int32 ids; a list/tuple/array of
        strings of shape `S` gives `S + (sequence_length,)`.

    Example:
    ```python
    tokenizer = SigLIP2Tokenizer("gemma.model")
    tokenizer(["a photo of a cat", "a dog"])         # (2, 64) int32
    ds = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    tokenizer.detokenize(tokenizer("a cat"))         # "a cat"
    ```
    """

    backbone_cls = SigLIP2Backbone

    def __init__(self, proto=None, sequence_length=64, canonicalize="lower", **kwargs):
        if (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, numbers.Integral)
            or sequence_length < 1
        ):
            raise ValueError(
                f"`sequence_length` must be a positive int; got {sequence_length!r}."
            )
        sequence_length = int(sequence_length)
        if isinstance(kwargs.get("dtype"), str) and not is_int_dtype(kwargs["dtype"]):
            raise ValueError(f"SigLIP2Tokenizer outputs integer ids; got dtype={kwargs['dtype']!r}.")
        # Packing adds EOS itself; the SentencePiece ops must add nothing.
        for key in ("add_bos", "add_eos"):
            if kwargs.pop(key, False):
                raise ValueError(f"SigLIP2Tokenizer does not take `{key}=True`.")
        self._add_special_token("<pad>", "pad_token")
        self._add_special_token("<eos>", "end_token")
        self._add_special_token("<bos>", "start_token")
        self._add_special_token("<unk>", "unknown_token")
        super().__init__(
            proto=proto,
            sequence_length=sequence_length,
            add_bos=False,
            add_eos=False,
            **kwargs,
        )
        self.canonicalize = check_mode(canonicalize)

    # -- tokenize ---------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        """Checks eager inputs here, before Keras' layer call, which would
        re-raise their errors wrapped in its own text."""
        if not in_tf_function():
            _to_python_texts(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def tokenize(self, inputs):
        self._check_vocabulary()
        if inputs is None:
            raise TypeError(f"{_EXPECTED}; got None.")
        if self._use_tf_workflow():
            return self._tokenize_tf(inputs)
        return convert_preprocessing_outputs_python(self._tokenize_python(inputs))

    def _pack(self, ids):
        length = self.sequence_length
        ids = list(ids[: length - 1]) + [self.end_token_id]
        return ids + [self.pad_token_id] * (length - len(ids))

    def _tokenize_python(self, inputs):
        texts, shape = _to_python_texts(inputs)
        self._maybe_initialized_spm()
        texts = [_canonicalize_str(t, self.canonicalize) for t in texts]
        ids = self._sentence_piece_spm.Encode(texts, add_bos=False, add_eos=False)
        packed = np.array([self._pack(x) for x in ids], dtype=self.compute_dtype)
        return packed.reshape(tuple(shape) + (self.sequence_length,))

    @preprocessing_function
    def _tokenize_tf(self, inputs):
        self._maybe_initialized_tf()
        if isinstance(inputs, tf.RaggedTensor):
            raise TypeError(f"{_EXPECTED}; got a tf.RaggedTensor (pass a dense tensor).")
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype != tf.string:
            raise TypeError(f"{_EXPECTED}; got a tensor of dtype {inputs.dtype.name}.")
        length = self.sequence_length
        flat = canonicalize_text_tf(tf.reshape(inputs, [-1]), self.canonicalize)
        tokens = self._sentence_piece.tokenize(flat)[:, : length - 1]
        eos = tf.fill([tokens.nrows(), 1], tf.cast(self.end_token_id, tokens.dtype))
        tokens = tf.concat([tokens, eos], axis=1)
        dense = tokens.to_tensor(default_value=self.pad_token_id, shape=[None, length])
        out_shape = tf.concat([tf.shape(inputs), [length]], axis=0)
        dense = tf.reshape(tf.cast(dense, self.compute_dtype), out_shape)
        dense.set_shape(inputs.shape.concatenate([length]))
        return dense

    # -- serialization ----------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.pop("add_bos", None)
        config.pop("add_eos", None)
        config["canonicalize"] = self.canonicalize
        return config
