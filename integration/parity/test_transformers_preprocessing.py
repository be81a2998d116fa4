"""The tokenizer and the image converters against transformers' tokenizers and
image processors: token ids, NaFlex target sizes, patches and masks."""

import numpy as np
import pytest

from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2ImageConverter,
    SigLIP2Tokenizer,
    canonicalize_text,
    naflex_target_size,
)
from tests.preprocessing.conftest import CORPUS
from tests.preprocessing.test_image_converters import crops, np_
from tests.preprocessing.test_naflex_target_size import random_cases
from tests.preprocessing.test_siglip2_tokenizer import EXTRA, LENGTH, np_ids

# Pillow resizes uint8 images and rounds its output to uint8 (≤ 0.5 level)
# with fixed-point filter weights; TensorFlow keeps float32. Measured
# differences stay within one uint8 level, i.e. 1/127.5 on [-1, 1]; 1% slack
# covers float32 rounding in the two normalisations.
ONE_LEVEL = 1.01 / 127.5


@pytest.mark.parity
@pytest.mark.parametrize("patch_size,max_num_patches", [(16, 256), (14, 1024)])
def test_naflex_matches_transformers_siglip2_image_processor(photos, patch_size, max_num_patches):
    from transformers.models.siglip2.image_processing_pil_siglip2 import Siglip2ImageProcessorPil

    reference = Siglip2ImageProcessorPil(patch_size=patch_size, max_num_patches=max_num_patches)
    converter = NaFlexImageConverter(patch_size, max_num_patches)
    images = crops(photos)
    ours = converter(list(images.values()))
    worst = {}
    for i, (name, image) in enumerate(images.items()):
        theirs = reference(images=[image], return_tensors="np", input_data_format="channels_last")
        np.testing.assert_array_equal(np_(ours["spatial_shapes"])[i], theirs["spatial_shapes"][0])
        np.testing.assert_array_equal(np_(ours["patch_mask"])[i], theirs["pixel_attention_mask"][0] == 1)
        worst[name] = float(np.abs(np_(ours["patches"])[i] - theirs["pixel_values"][0]).max())
    print(f"NaFlex P={patch_size} N={max_num_patches} max |ours - transformers|: {worst}")
    assert max(worst.values()) <= ONE_LEVEL, worst


@pytest.mark.parity
def test_fixed_matches_transformers_siglip_image_processor(photos):
    # SiglipImageProcessorPil is Pillow-only (no torchvision). Its default
    # resample is bicubic; ours is bilinear, so compare bilinear to bilinear.
    from transformers.image_utils import PILImageResampling
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    worst = {}
    for size in (224, 384):
        reference = SiglipImageProcessorPil(
            size={"height": size, "width": size}, resample=PILImageResampling.BILINEAR,
            image_mean=[0.5] * 3, image_std=[0.5] * 3,
        )
        converter = SigLIP2ImageConverter(size)
        for name, image in crops(photos).items():
            theirs = reference(images=[image], return_tensors="np",
                               input_data_format="channels_last")["pixel_values"]
            ours = np_(converter([image])).transpose(0, 3, 1, 2)
            assert ours.shape == theirs.shape == (1, 3, size, size)
            worst[(size, name)] = float(np.abs(ours - theirs).max())
    print(f"Fixed-res bilinear max |ours - transformers|: {worst}")
    assert max(worst.values()) <= ONE_LEVEL, worst


@pytest.mark.parity
def test_equals_transformers_on_random_cases():
    from transformers.models.siglip2.image_processing_pil_siglip2 import (
        get_image_size_for_max_num_patches,
    )

    for h, w, p, n in random_cases():
        ours = naflex_target_size(h, w, p, n)
        theirs = get_image_size_for_max_num_patches(h, w, p, n)
        assert ours == tuple(theirs), (h, w, p, n)


# ---------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def tokenizer(spm_model):
    return SigLIP2Tokenizer(spm_model)


@pytest.fixture(scope="module")
def hf_dir(spm_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf_tokenizer")
    with open(spm_model, "rb") as src, open(directory / "tokenizer.model", "wb") as dst:
        dst.write(src.read())
    return str(directory)


def siglip2_rules(ids, eos=1, pad=0, length=LENGTH):
    """Reference packing (big_vision `tokenize(eos="sticky")`): no BOS, EOS, cut, pad."""
    ids = list(ids)
    if ids and ids[0] == 2:  # transformers' Gemma tokenizer may prepend BOS
        ids = ids[1:]
    ids = ids + [eos]
    if len(ids) > length:
        ids = ids[: length - 1] + [eos]
    return ids + [pad] * (length - len(ids))


@pytest.mark.parity
@pytest.mark.parametrize("mode", ["lower", "lower_unicode", "eval", None])
def test_ids_equal_transformers_gemma_tokenizer(tokenizer, hf_dir, mode):
    from transformers import GemmaTokenizer

    hf = GemmaTokenizer.from_pretrained(hf_dir)
    texts = CORPUS + EXTRA
    ours = np_ids(SigLIP2Tokenizer(tokenizer.proto, canonicalize=mode)(texts))
    for text, row in zip(texts, ours):
        expected = siglip2_rules(hf(canonicalize_text(text, mode))["input_ids"])
        assert row.tolist() == expected, text


@pytest.mark.parity
def test_lower_unicode_equals_transformers_siglip2_tokenizer(tokenizer, hf_dir):
    from transformers.models.siglip2.tokenization_siglip2 import Siglip2Tokenizer

    hf = Siglip2Tokenizer.from_pretrained(hf_dir)  # Gemma + Lowercase normaliser
    texts = CORPUS + EXTRA
    ours = np_ids(SigLIP2Tokenizer(tokenizer.proto, canonicalize="lower_unicode")(texts))
    hf_ids = hf(texts, padding="max_length", max_length=LENGTH, truncation=True)
    for text, row, theirs in zip(texts, ours, hf_ids["input_ids"]):
        theirs = [t for t in theirs if t != hf.pad_token_id]
        assert row.tolist() == siglip2_rules(theirs), text
    # The default ("lower", ASCII-only as in training) differs exactly where
    # upper-case non-ASCII letters occur.
    default = np_ids(tokenizer(["Ärger", "ärger", "anger"]))
    unicode = np_ids(SigLIP2Tokenizer(tokenizer.proto, canonicalize="lower_unicode")(["Ärger"]))
    assert not np.array_equal(default[0], default[1])
    assert np.array_equal(unicode[0], default[1])
