"""Shared fixtures: a Gemma-style SentencePiece model trained here, sample photos."""

import json
import os

import pytest

from keras_siglip2.data.demo_vocabulary import GEMMA_SPECIAL_PIECES

# Multilingual captions. Upper case, punctuation, digits, several scripts and
# whitespace runs, so lowercasing, byte fallback and splitting are exercised.
CORPUS = [
    "A photo of a cat sitting on the red sofa.",
    "Ein Hund spielt im Garten mit einem Ball.",
    "Un chat noir dort sur la fenêtre, près de l'école.",
    "Собака бежит по снегу в парке.",
    "一只猫坐在桌子上。",
    "犬が公園で走っている。",
    "Η γάτα κοιμάται στον καναπέ.",
    "El perro come su comida en la cocina.",
    "A bird flying over the ocean at sunset, 2024!",
    "The quick brown fox jumps over the lazy dog.",
    "Ärger über die Straße: ÖL und ÜBER alles.",
    "a satellite image of the city_center at night",
    "Two people riding bicycles   down a narrow street.",
    "कुत्ता पार्क में दौड़ रहा है।",
    "고양이가 창가에 앉아 있다.",
]


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory):
    """Path of a BPE SentencePiece model with Gemma's special ids and settings.

    pad 0, eos 1, bos 2, unk 3 (as in Gemma's vocabulary), byte fallback, no
    dummy prefix, identity normalisation, split digits — the options Gemma's
    tokenizer was trained with, so transformers' Gemma conversion applies.
    """
    import sentencepiece as spm

    directory = tmp_path_factory.mktemp("spm")
    prefix = str(directory / "gemma_like")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_prefix=prefix,
        vocab_size=700,
        model_type="bpe",
        **GEMMA_SPECIAL_PIECES,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        byte_fallback=True,
        split_digits=True,
        character_coverage=1.0,
        allow_whitespace_only_pieces=True,
        minloglevel=2,
    )
    return prefix + ".model"


@pytest.fixture(scope="session")
def photos():
    """Real photographs that scikit-image ships (no download)."""
    from skimage import data

    return {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
    }


def write_backbone_config(preset_dir):
    """A stand-in `config.json`: keras-hub's preset loader identifies a preset
    by its backbone config, and the tokenizer/converter loaders only read the
    registered class name from it (no weights are needed for these tests)."""
    with open(os.path.join(preset_dir, "config.json"), "w") as f:
        json.dump({"module": "keras_siglip2.models.backbone", "class_name": "SigLIP2Backbone",
                   "registered_name": "keras_siglip2>SigLIP2Backbone", "config": {}}, f)
