"""load_image / image_to_array: every input form, colour modes, clear errors."""

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from keras_siglip2.preprocessing import image_to_array
from keras_siglip2.preprocessing import load_image


def encode(array, fmt="PNG", **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


def test_uint8_rgb_array_is_returned_unchanged(rgb):
    out = load_image(rgb)
    assert out.dtype == np.uint8 and out.shape == (12, 17, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("shape", [(12, 17), (12, 17, 1)])
def test_grayscale_is_repeated_to_three_channels(shape):
    gray = np.arange(12 * 17, dtype=np.uint8).reshape(shape)
    out = load_image(gray)
    assert out.shape == (12, 17, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray.reshape(12, 17))


def test_rgba_alpha_dropped_or_composited_on_white(rgb):
    alpha = np.zeros((12, 17, 1), np.uint8)
    alpha[:, :8] = 255  # left opaque, right transparent
    alpha[0, 0] = 128
    rgba = np.concatenate([rgb, alpha], axis=-1)
    np.testing.assert_array_equal(load_image(rgba), rgb)  # default "drop"
    white = load_image(rgba, alpha="white")
    np.testing.assert_array_equal(white[1:, :8], rgb[1:, :8])
    assert (white[:, 8:] == 255).all()
    expected = np.round(rgb[0, 0] * (128 / 255) + 255 * (1 - 128 / 255))
    np.testing.assert_array_equal(white[0, 0], expected.astype(np.uint8))
    # PIL RGBA and encoded RGBA PNG follow the same rule.
    np.testing.assert_array_equal(load_image(Image.fromarray(rgba), alpha="white"), white)
    np.testing.assert_array_equal(load_image(encode(rgba), alpha="white"), white)
    np.testing.assert_array_equal(load_image(encode(rgba)), rgb)
    with pytest.raises(ValueError, match="alpha"):
        load_image(rgba, alpha="black")


def test_gray_alpha_and_pil_modes(rgb):
    la = np.stack([rgb[..., 0], np.full((12, 17), 255, np.uint8)], -1)
    np.testing.assert_array_equal(load_image(la), np.repeat(rgb[..., :1], 3, -1))
    pil = Image.fromarray(rgb)
    np.testing.assert_array_equal(load_image(pil), rgb)
    for mode in ["L", "1", "P", "CMYK", "YCbCr", "I", "F", "LA", "PA"]:
        out = load_image(pil.convert(mode))
        assert out.shape == (12, 17, 3) and out.dtype == np.uint8, mode
    np.testing.assert_array_equal(load_image(pil.convert("L")), np.asarray(pil.convert("RGB").convert("L").convert("RGB")))


def test_extreme_sizes():
    assert load_image(np.full((1, 1, 3), 7, np.uint8)).tolist() == [[[7, 7, 7]]]
    wide = np.random.default_rng(1).integers(0, 256, (1, 10000, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(wide), wide)
    np.testing.assert_array_equal(load_image(encode(wide)), wide)
    np.testing.assert_array_equal(load_image(wide.transpose(1, 0, 2)), wide.transpose(1, 0, 2))


def test_bytes_and_paths(rgb, tmp_path):
    png = encode(rgb)
    np.testing.assert_array_equal(load_image(png), rgb)
    np.testing.assert_array_equal(load_image(bytearray(png)), rgb)
    np.testing.assert_array_equal(load_image(memoryview(png)), rgb)
    path = tmp_path / "image.png"
    path.write_bytes(png)
    np.testing.assert_array_equal(load_image(str(path)), rgb)
    np.testing.assert_array_equal(load_image(pathlib.Path(path)), rgb)
    jpeg = encode(rgb, "JPEG", quality=95)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    np.testing.assert_array_equal(load_image(jpeg), decoded)
    for fmt in ["WEBP", "BMP", "TIFF", "GIF"]:
        assert load_image(encode(rgb, fmt)).shape == rgb.shape, fmt


def test_exif_orientation_is_applied(tmp_path):
    tall = np.zeros((4, 2, 3), np.uint8)
    tall[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    Image.fromarray(tall).save(buffer, "PNG", exif=exif)
    out = load_image(buffer.getvalue())
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out, np.rot90(tall, k=-1))


def test_float_and_integer_arrays_use_value_range(rgb):
    unit = rgb.astype(np.float32) / 255.0
    np.testing.assert_array_equal(load_image(unit, value_range=(0, 1)), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.float64)), rgb)
    np.testing.assert_array_equal(load_image(rgb.astype(np.int64)), rgb)
    signed = rgb.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(load_image(signed, value_range=(-1, 1)), rgb)
    wide16 = rgb.astype(np.uint16) * 257
    np.testing.assert_array_equal(load_image(wide16, value_range=(0, 65535)), rgb)
    # Small overshoots (resampling) are clipped, floats keep their fraction in image_to_array.
    assert load_image(np.full((2, 2, 3), 258.0)).max() == 255
    assert load_image(np.full((2, 2, 3), -3.0)).min() == 0
    assert image_to_array(np.full((2, 2, 3), 10.25)).dtype == np.float32
    assert image_to_array(np.full((2, 2, 3), 10.25))[0, 0, 0] == pytest.approx(10.25)
    np.testing.assert_array_equal(load_image(np.ones((2, 2), bool)), np.full((2, 2, 3), 255))


def test_unit_float_image_with_default_range_warns(rgb):
    with pytest.warns(UserWarning, match="value_range"):
        out = load_image(rgb / 255.0)
    assert out.max() <= 1


def test_backend_and_tf_tensors(rgb):
    import keras
    import tensorflow as tf

    np.testing.assert_array_equal(load_image(tf.constant(rgb)), rgb)
    np.testing.assert_array_equal(load_image(keras.ops.convert_to_tensor(rgb)), rgb)


def test_corrupt_and_missing_files_raise_clear_errors(rgb, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(encode(rgb)[:60])
    with pytest.raises(ValueError, match="broken.png") as info:
        load_image(bad)
    assert "re-export" in str(info.value)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg"):
        load_image(str(text))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="directory"):
        load_image(str(tmp_path))
    with pytest.raises(ValueError, match="bytes"):
        load_image(b"\x89PNG not really")
    with pytest.raises(ValueError, match="empty bytes"):
        load_image(b"")
    with pytest.raises(ValueError, match="download"):
        load_image("https://example.com/cat.jpg")


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (0, 0), (5, 0)])
def test_zero_size_side_is_rejected(shape):
    with pytest.raises(ValueError, match="zero-size side"):
        load_image(np.zeros(shape, np.uint8))


def test_bad_shapes_and_types():
    with pytest.raises(ValueError, match="channels-first"):
        load_image(np.zeros((3, 10, 12), np.uint8))
    with pytest.raises(ValueError, match="batch"):
        load_image(np.zeros((2, 10, 12, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="got None"):
        load_image(None)
    with pytest.raises(TypeError, match="numeric"):
        load_image(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match="value_range"):
        load_image(np.zeros((2, 2, 3)), value_range=(1, 1))
