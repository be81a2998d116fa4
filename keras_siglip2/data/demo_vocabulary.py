"""A small SentencePiece vocabulary for the demo captions, shipped with the package.

`keras_siglip2/data/demo_spm.model` is the output of
`train_demo_vocabulary(demo_vocabulary_path())`; training is deterministic (one thread,
fixed input order), so re-running it reproduces the file byte for byte.

Layout, chosen to match the Gemma tokenizer that SigLIP 2 uses (so the same
preprocessing and keras-hub's `GemmaTokenizer` work with either):
    0 `<pad>`, 1 `<eos>`, 2 `<bos>`, 3 `<unk>`, 4 `<mask>` (as in Gemma: a mask token
    for the decoder's parallel prediction), then 256 byte-fallback pieces
    `<0x00>`…`<0xFF>` (any text encodes without `<unk>`), then the learned pieces.
BPE, identity normalisation, digits split, character coverage 1.0 (every character
of the Japanese and Russian captions is a piece). The training text is
`demo_caption_corpus()` plus the lowercase ASCII letters, digits and common
punctuation as single characters, so that any lowercase English prompt encodes
without byte fallback.
"""

import os

DEMO_VOCABULARY_SIZE = 1000
_EXTRA_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789.,:;!?'\"-_()/&+"
_FILE_NAME = "demo_spm.model"

# Gemma's special ids (pad 0, eos 1, bos 2, unk 3, <mask> 4), for any
# SentencePiece model that should tokenise like the SigLIP 2 vocabulary.
GEMMA_SPECIAL_PIECES = dict(
    pad_id=0,
    eos_id=1,
    bos_id=2,
    unk_id=3,
    pad_piece="<pad>",
    eos_piece="<eos>",
    bos_piece="<bos>",
    unk_piece="<unk>",
    user_defined_symbols=["<mask>"],
)


def demo_vocabulary_path():
    """Path of the shipped demo SentencePiece model."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), _FILE_NAME)


def demo_vocabulary_training_text():
    """The exact list of texts `train_demo_vocabulary` trains on."""
    from keras_siglip2.data.demo_shapes import demo_caption_corpus

    return demo_caption_corpus() + [" ".join(_EXTRA_CHARACTERS)]


def train_demo_vocabulary(path=None, vocab_size=DEMO_VOCABULARY_SIZE):
    """Trains the demo vocabulary; writes it to `path` (if given) and returns the
    serialized model proto (bytes)."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(demo_vocabulary_training_text()),
        model_writer=model,
        model_type="bpe",
        vocab_size=int(vocab_size),
        **GEMMA_SPECIAL_PIECES,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        split_digits=True,
        max_sentencepiece_length=8,
        num_threads=1,
        minloglevel=2,
    )
    proto = model.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(proto)
    return proto
