import os

import pytest

from keras_siglip2.data import demo_caption_corpus
from keras_siglip2.data import demo_class_names
from keras_siglip2.data import demo_vocabulary_path
from keras_siglip2.data import make_demo_examples
from keras_siglip2.data import train_demo_vocabulary
from keras_siglip2.data.demo_captions import LANGUAGES

spm = pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def shipped():
    path = demo_vocabulary_path()
    assert os.path.isfile(path)
    return spm.SentencePieceProcessor(model_file=path)


def test_shipped_file_is_what_training_produces(shipped):
    trained = spm.SentencePieceProcessor(model_proto=train_demo_vocabulary())
    pieces = [shipped.id_to_piece(i) for i in range(shipped.get_piece_size())]
    assert pieces == [trained.id_to_piece(i) for i in range(trained.get_piece_size())]
    corpus = demo_caption_corpus()
    assert shipped.encode(corpus) == trained.encode(corpus)


def test_gemma_special_ids(shipped):
    assert shipped.get_piece_size() == 1000
    assert [shipped.id_to_piece(i) for i in range(5)] == ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    assert (shipped.pad_id(), shipped.eos_id(), shipped.bos_id(), shipped.unk_id()) == (0, 1, 2, 3)


def test_every_caption_round_trips_without_unknown_or_byte_pieces(shipped):
    texts = list(demo_caption_corpus())
    for e in make_demo_examples(150, seed=11) + make_demo_examples(100, seed=12, english_fraction=0.0):
        texts += [e["caption"]] + e["region_texts"]
    for language in LANGUAGES:
        texts += demo_class_names(language)
    texts.append("a photo of a dog, 2 cats; (quickly!)")
    for text in texts:
        ids = shipped.encode(text)
        assert shipped.unk_id() not in ids, text
        assert not any(shipped.is_byte(i) for i in ids), text
        assert shipped.decode(ids) == text


def test_byte_fallback_for_unseen_characters(shipped):
    ids = shipped.encode("猫")
    assert shipped.id_to_piece(ids[0]) == "▁"  # the dummy-prefix space
    assert len(ids) == 4 and all(shipped.is_byte(i) for i in ids[1:])  # 3 UTF-8 bytes
    assert shipped.decode(ids) == "猫"


def test_loads_as_keras_hub_gemma_tokenizer(shipped):
    keras_hub = pytest.importorskip("keras_hub")
    tokenizer = keras_hub.tokenizers.GemmaTokenizer(proto=demo_vocabulary_path())
    text = "ein roter kreis auf gestreiftem hintergrund"
    assert [int(i) for i in tokenizer(text)] == shipped.encode(text)
    assert (tokenizer.pad_token_id, tokenizer.end_token_id, tokenizer.start_token_id) == (0, 1, 2)
