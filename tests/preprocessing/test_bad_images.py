"""Bad and edge-case images: 16-bit data is scaled, implausible value ranges are
refused or warned about, and every converter error reaches the caller as raised
(no Keras wrapping, no ANSI codes), eagerly and naming the image of a batch."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_siglip2.data import demo_vocabulary_path
from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2ImageConverter,
    SigLIP2Tokenizer,
    load_image,
)

RAMP16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)


def png(array, mode=None):
    buffer = io.BytesIO()
    image = Image.fromarray(array) if mode is None else Image.frombytes(
        mode, array.shape[::-1], array.astype(">u2").tobytes()
    )
    image.save(buffer, "PNG" if mode is None else "TIFF")
    return buffer.getvalue()


def scaled16(array):
    return np.repeat(np.round(array / 257.0).astype(np.uint8)[..., None], 3, -1)


# ------------------------------------------------------------ 16-bit data
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: RAMP16, id="uint16-array"),
        pytest.param(lambda: png(RAMP16), id="16-bit-png"),
        pytest.param(lambda: Image.open(io.BytesIO(png(RAMP16, "I;16B"))), id="16-bit-big-endian-tiff"),
    ],
)
def test_16_bit_grey_is_scaled_by_its_range(make):
    out = load_image(make())
    np.testing.assert_array_equal(out, scaled16(RAMP16))
    assert (out == 255).mean() < 0.01  # was 99.6% white: clipped instead of scaled


def test_uint16_with_an_explicit_range_and_16_bit_files_ignore_it():
    twelve_bit = (RAMP16 // 16).astype(np.uint16)  # 0..4095
    np.testing.assert_array_equal(
        load_image(twelve_bit, value_range=(0, 4095)),
        np.repeat(np.round(twelve_bit * (255 / 4095)).astype(np.uint8)[..., None], 3, -1),
    )
    # A file's bit depth fixes its scale; `value_range` is for arrays.
    np.testing.assert_array_equal(load_image(png(RAMP16), value_range=(0, 1)), scaled16(RAMP16))


# ------------------------------------------------------ implausible values
@pytest.mark.parametrize(
    "array, value_range, hint",
    [
        (np.full((4, 4, 3), 1000.0), None, "16-bit"),
        (np.full((4, 4, 3), 40000, np.int32), None, "16-bit"),
        (np.full((4, 4, 3), 3.0), (0, 1), r"8-bit data, pass `value_range=\(0, 255\)"),
        (np.full((4, 4, 3), -200.0), None, r"\(low, high\)"),
        (np.full((4, 4, 3), 70000.0), (0, 65535), r"\(low, high\)"),
    ],
    ids=["float-1000", "int-40000", "3-on-unit-range", "negative", "above-16-bit"],
)
def test_values_far_outside_the_range_are_refused(array, value_range, hint):
    with pytest.raises(ValueError, match=f"far outside the value range.*{hint}"):
        load_image(array, value_range=value_range)


@pytest.mark.parametrize(
    "low, expected", [(0.0, r"value_range=\(0, 1\)"), (-1.0, r"value_range=\(-1, 1\)")]
)
def test_unit_and_signed_unit_floats_read_as_0_255_warn(low, expected):
    image = np.linspace(low, 1.0, 48, dtype=np.float32).reshape(4, 4, 3)
    with pytest.warns(UserWarning, match=expected):
        load_image(image)


def test_small_overshoot_is_clipped_silently(recwarn):
    overshoot = np.array([[[-4.0, 128.0, 259.0]]], np.float32)
    assert load_image(overshoot).tolist() == [[[0, 128, 255]]]
    assert not recwarn.list


# ------------------------------------------- errors reach the caller as raised
CONVERTERS = {
    "fixed": lambda: SigLIP2ImageConverter(16),
    "naflex": lambda: NaFlexImageConverter(8, 16),
}

BAD_INPUTS = [
    ("missing-file", lambda tmp: str(tmp / "missing.png"), FileNotFoundError, "missing.png.*does not exist"),
    ("corrupt-file", lambda tmp: b"\x89PNG not really", ValueError, "Could not read 15 bytes.*corrupt"),
    ("zero-size", lambda tmp: np.zeros((0, 4, 3), np.uint8), ValueError, "zero-size side"),
    ("five-channels", lambda tmp: np.zeros((6, 6, 5), np.uint8), ValueError, r"\(H, W, 4\); got \(6, 6, 5\)"),
    ("a-number", lambda tmp: 5, TypeError, "single number 5"),
    ("none", lambda tmp: None, TypeError, "got None"),
    ("float-1000", lambda tmp: np.full((4, 4, 3), 1000.0), ValueError, "far outside"),
    ("nan", lambda tmp: np.full((4, 4, 3), np.nan), ValueError, "NaN"),
    ("url", lambda tmp: "https://example.com/cat.jpg", ValueError, "does not download"),
    ("batch-with-none", lambda tmp: [np.zeros((4, 4, 3), np.uint8), None], TypeError, "Image 1 of 2: .*got None"),
    ("batch-with-missing", lambda tmp: [np.zeros((4, 4, 3), np.uint8), str(tmp / "gone.jpg")],
     FileNotFoundError, "Image 1 of 2: .*gone.jpg"),
]


@pytest.mark.parametrize("kind", sorted(CONVERTERS))
@pytest.mark.parametrize(
    "make, error, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_converter_errors_are_not_wrapped_by_keras(kind, make, error, message, tmp_path):
    with pytest.raises(error, match=message) as info:
        CONVERTERS[kind]()(make(tmp_path))
    text = str(info.value)
    assert "Exception encountered" not in text and "\x1b" not in text and "Arguments received" not in text
    assert type(info.value) is error


def test_naflex_bad_max_num_patches_is_not_wrapped():
    with pytest.raises(ValueError, match="`max_num_patches` must be a positive int; got 0") as info:
        NaFlexImageConverter(8, 16)(np.zeros((8, 8, 3), np.uint8), max_num_patches=0)
    assert "Exception encountered" not in str(info.value)


@pytest.mark.parametrize(
    "texts, error, message",
    [
        (5, TypeError, "got int"),
        (["fine", 3], TypeError, "at index 1"),
        (["ok", "a\ud800b"], ValueError, "index 1 is not valid Unicode.*U\\+D800"),
        ([b"\xff\xfe"], ValueError, "not valid UTF-8"),
    ],
    ids=["number", "number-in-list", "lone-surrogate", "bad-utf8-bytes"],
)
def test_tokenizer_errors_are_not_wrapped_by_keras(texts, error, message):
    tokenizer = SigLIP2Tokenizer(proto=str(demo_vocabulary_path()), sequence_length=8)
    with pytest.raises(error, match=message) as info:
        tokenizer(texts)
    assert "Exception encountered" not in str(info.value)


# ------------------------------------------------------------ in tf.data
def _through_dataset(converter, image):
    dataset = tf.data.Dataset.from_tensors(image).map(converter)
    return tf.nest.map_structure(np.asarray, next(iter(dataset)))


def test_tf_data_scales_uint16_like_eager_calls():
    converter = SigLIP2ImageConverter(16)
    image = np.repeat(RAMP16[..., None], 3, -1)
    np.testing.assert_allclose(
        _through_dataset(converter, image), np.asarray(converter(image)), atol=1e-6
    )


def test_tf_data_refuses_values_far_outside_the_range():
    with pytest.raises(tf.errors.InvalidArgumentError, match="value range \\(0, 255\\)"):
        _through_dataset(SigLIP2ImageConverter(16), np.full((4, 4, 3), 1000.0, np.float32))


# ---------------------------------------------------------- edge cases
@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (1, 10000, 3), (10000, 1), (7, 9), (7, 9, 1), (7, 9, 2), (7, 9, 4)],
    ids=["1x1", "1x10000", "10000x1-grey", "grey", "grey-1", "grey-alpha", "rgba"],
)
def test_extreme_sizes_and_channel_counts_give_sensible_outputs(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    fixed = np.asarray(SigLIP2ImageConverter(16)(image))
    assert fixed.shape == (16, 16, 3) and np.isfinite(fixed).all()
    assert -1.0 <= fixed.min() and fixed.max() <= 1.0
    naflex = {k: np.asarray(v) for k, v in NaFlexImageConverter(8, 16)(image).items()}
    h, w = naflex["spatial_shapes"].tolist()
    assert 1 <= h * w <= 16 and naflex["patch_mask"].sum() == h * w
    assert naflex["patch_mask"][: h * w].all()
    if shape[0] == 1 and len(shape) == 3 and shape[1] > 1:
        assert h == 1  # a 1-pixel-high strip stays one patch row
