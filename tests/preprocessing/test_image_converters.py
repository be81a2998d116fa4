"""Fixed-resolution and NaFlex converters: transformers parity, layout, tf.data, saving."""

import io
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_siglip2.preprocessing import NaFlexImageConverter
from keras_siglip2.preprocessing import SigLIP2ImageConverter
from keras_siglip2.preprocessing import naflex_target_size
from tests.preprocessing.conftest import write_backbone_config

def np_(x):
    return keras.ops.convert_to_numpy(x)


def crops(photos):
    """The photos, plus crops to extreme aspect ratios."""
    a, c, ch = photos["astronaut"], photos["coffee"], photos["chelsea"]
    return {
        **photos,
        "astronaut_20x500": a[100:120, :500],
        "coffee_500x20": c[:, 300:320][:400],  # 400×20
        "chelsea_1x300": ch[150:151, :300],
        "astronaut_300x7": a[:300, 250:257],
    }


def test_naflex_patch_layout_padding_and_mask():
    # 48×32 with P=16, N=7: the target is the image's own size (3×2 patches,
    # a larger scale would need 4×3), so the resize is the identity and the
    # patches can be checked exactly.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)
    assert naflex_target_size(48, 32, 16, 7) == (48, 32)
    out = NaFlexImageConverter(16, 7)(image)
    patches = np_(out["patches"])
    assert patches.shape == (7, 16 * 16 * 3) and patches.dtype == np.float32
    scaled = image.astype(np.float32) / 127.5 - 1
    for row in range(3):
        for col in range(2):
            block = scaled[16 * row:16 * (row + 1), 16 * col:16 * (col + 1)]
            np.testing.assert_allclose(patches[2 * row + col], block.reshape(-1), atol=1e-6)
    assert (patches[6] == 0).all()
    assert np_(out["patch_mask"]).tolist() == [True] * 6 + [False]
    assert np_(out["spatial_shapes"]).tolist() == [3, 2]
    # (py, px, c) order: the second value of a patch row is the green channel
    # of its top-left pixel.
    assert patches[0, 1] == pytest.approx(scaled[0, 0, 1])


def test_fixed_squashes_and_scales_to_minus_one_one():
    image = np.zeros((10, 40, 3), np.uint8)
    image[..., 0] = 255
    out = np_(SigLIP2ImageConverter(16)(image))
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1:], -1.0, atol=1e-6)
    identity = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        np_(SigLIP2ImageConverter(16)(identity)), identity / 127.5 - 1, atol=1e-6
    )


def test_antialias_matters_when_shrinking(photos):
    image = photos["astronaut"]
    smooth = np_(SigLIP2ImageConverter(32)(image))
    aliased = np_(SigLIP2ImageConverter(32, antialias=False)(image))
    box = image.reshape(32, 16, 32, 16, 3).mean(axis=(1, 3)) / 127.5 - 1
    assert np.abs(smooth - box).mean() < np.abs(aliased - box).mean() / 2


def test_input_forms_and_lists_of_sizes(photos, tmp_path):
    coffee = photos["coffee"]
    buffer = io.BytesIO()
    Image.fromarray(coffee).save(buffer, "PNG")
    path = tmp_path / "coffee.png"
    path.write_bytes(buffer.getvalue())
    forms = [coffee, Image.fromarray(coffee), buffer.getvalue(), str(path),
             coffee.astype(np.float32) / 255.0]
    for converter in (SigLIP2ImageConverter(64), NaFlexImageConverter(16, 64)):
        single = np_(tf.nest.flatten(converter(coffee))[0])
        for form in forms[:4] + [tf.constant(forms[2])]:
            np.testing.assert_array_equal(np_(tf.nest.flatten(converter(form))[0]), single)
        encoded_batch = converter(tf.constant([forms[2], forms[2]]))
        np.testing.assert_array_equal(np_(tf.nest.flatten(encoded_batch)[0])[1], single)
        unit = tf.nest.flatten(NaFlexImageConverter(16, 64, value_range=(0, 1))(forms[4]))[0] \
            if isinstance(converter, NaFlexImageConverter) else \
            SigLIP2ImageConverter(64, value_range=(0, 1))(forms[4])
        np.testing.assert_allclose(np_(unit), single, atol=1e-5)
    images = [photos["astronaut"], coffee, np.zeros((1, 1, 3), np.uint8),
              np.zeros((1, 10000), np.uint8), photos["chelsea"][..., :1]]
    fixed = np_(SigLIP2ImageConverter(64)(images))
    assert fixed.shape == (5, 64, 64, 3)
    naflex = NaFlexImageConverter(16, 64)(images)
    assert np_(naflex["patches"]).shape == (5, 64, 768)
    expected = [[s // 16 for s in naflex_target_size(*x.shape[:2], 16, 64)] for x in images]
    assert np_(naflex["spatial_shapes"]).tolist() == expected
    assert expected[2] == [7, 7] and expected[3] == [1, 64]  # 1×1 upscaled ×100, 1×10000
    counts = np_(naflex["patch_mask"]).sum(axis=1)
    assert counts.tolist() == [h * w for h, w in expected]
    np.testing.assert_array_equal(
        np_(naflex["patches"])[1], np_(NaFlexImageConverter(16, 64)(coffee)["patches"])
    )
    # A (B, H, W, 3) array is a batch.
    batch = np.stack([coffee, coffee])
    assert np_(SigLIP2ImageConverter(64)(batch)).shape == (2, 64, 64, 3)


def test_max_num_patches_per_call(photos):
    converter = NaFlexImageConverter(16)
    out = converter(photos["coffee"], max_num_patches=1024)
    assert np_(out["patches"]).shape == (1024, 768)
    h, w = np_(out["spatial_shapes"]).tolist()
    assert (h * 16, w * 16) == naflex_target_size(400, 600, 16, 1024)
    assert np_(converter(photos["coffee"])["patches"]).shape == (256, 768)
    assert converter.max_num_patches == 256


def test_tf_data_graph_equals_eager(photos):
    images = list(crops(photos).values()) + [
        np.zeros((1, 1, 3), np.uint8),
        np.random.default_rng(0).integers(0, 256, (1, 10000, 3), dtype=np.uint8),
    ]
    spec = tf.TensorSpec((None, None, 3), tf.uint8)
    fixed, naflex = SigLIP2ImageConverter(96), NaFlexImageConverter(16, 128)
    dataset = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=spec)
    for converter in (fixed, naflex):
        mapped = dataset.map(converter)
        for element, image in zip(mapped, images):
            eager = converter(image)
            for got, want in zip(tf.nest.flatten(element), tf.nest.flatten(eager)):
                np.testing.assert_array_equal(got.numpy(), np_(want))
    # Static shapes allow batching after the map.
    batched = next(iter(dataset.map(naflex).batch(3)))
    assert batched["patches"].shape == (3, 128, 768)
    assert batched["patch_mask"].dtype == tf.bool
    assert batched["spatial_shapes"].dtype == tf.int32
    # A dense (B, H, W, 3) batch inside the graph.
    same = tf.data.Dataset.from_tensor_slices(np.stack([photos["coffee"]] * 4)).batch(2)
    out = next(iter(same.map(naflex)))
    np.testing.assert_array_equal(out["patches"].numpy()[1], np_(naflex(photos["coffee"])["patches"]))


def test_tf_data_grayscale_rgba_and_float_inputs(photos):
    converter = NaFlexImageConverter(8, 32, alpha="white")
    rgba = np.concatenate([photos["chelsea"][:40, :60],
                           np.linspace(0, 255, 40 * 60).reshape(40, 60, 1).astype(np.uint8)], -1)
    gray = photos["chelsea"][:40, :60, 0]
    for image in (rgba, gray, gray[..., None], photos["chelsea"][:40, :60].astype(np.float32)):
        spec = tf.TensorSpec((None, None) + image.shape[2:], tf.as_dtype(image.dtype))
        mapped = tf.data.Dataset.from_generator(lambda image=image: iter([image]), output_signature=spec)
        got = next(iter(mapped.map(converter)))["patches"].numpy()
        np.testing.assert_allclose(got, np_(converter(image)["patches"]), atol=1e-6)


def test_errors():
    converter = NaFlexImageConverter(16)
    with pytest.raises(ValueError, match="zero-size side"):
        converter(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="empty list"):
        converter([])
    with pytest.raises(TypeError, match="None"):
        SigLIP2ImageConverter(224)(None)
    with pytest.raises(ValueError, match="max_num_patches"):
        converter(np.zeros((4, 4, 3), np.uint8), max_num_patches=0)
    with pytest.raises(ValueError, match="image_size"):
        SigLIP2ImageConverter((224, 256))
    with pytest.raises(ValueError, match="interpolation"):
        SigLIP2ImageConverter(224, interpolation="cubic")
    with pytest.raises(ValueError, match="patch_size"):
        NaFlexImageConverter(0)
    with pytest.raises(Exception, match="zero-size side"):
        ds = tf.data.Dataset.from_generator(
            lambda: iter([np.zeros((0, 5, 3), np.uint8)]),
            output_signature=tf.TensorSpec((None, None, 3), tf.uint8))
        next(iter(ds.map(converter)))


def test_serialization_and_preset_round_trip(tmp_path, photos):
    image = photos["chelsea"]
    for converter in (
        SigLIP2ImageConverter(64, interpolation="bicubic", antialias=False, alpha="white"),
        NaFlexImageConverter(14, 100, value_range=(0, 1)),
    ):
        config = keras.saving.serialize_keras_object(converter)
        json.dumps(config)
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(converter)
        assert restored.get_config() == converter.get_config()
        preset = str(tmp_path / type(converter).__name__)
        converter.save_to_preset(preset)
        write_backbone_config(preset)
        assert os.path.isfile(os.path.join(preset, "image_converter.json"))
        loaded = type(converter).from_preset(preset)
        assert loaded.get_config() == converter.get_config()
        x = image if converter.value_range is None else image / 255.0
        for a, b in zip(tf.nest.flatten(loaded(x)), tf.nest.flatten(converter(x))):
            np.testing.assert_array_equal(np_(a), np_(b))


@pytest.mark.backends
def test_eager_outputs_are_backend_tensors(photos):
    fixed = SigLIP2ImageConverter(32)([photos["coffee"], photos["chelsea"]])
    assert keras.ops.is_tensor(fixed) and tuple(fixed.shape) == (2, 32, 32, 3)
    assert keras.backend.standardize_dtype(fixed.dtype) == "float32"
    naflex = NaFlexImageConverter(16, 64)([photos["coffee"], photos["chelsea"][:20]])
    dtypes = {"patches": "float32", "patch_mask": "bool", "spatial_shapes": "int32"}
    for key, dtype in dtypes.items():
        assert keras.ops.is_tensor(naflex[key])
        assert keras.backend.standardize_dtype(naflex[key].dtype) == dtype, key
    expected = [[s // 16 for s in naflex_target_size(h, w, 16, 64)] for h, w in [(400, 600), (20, 451)]]
    assert np_(naflex["spatial_shapes"]).tolist() == expected


def test_warning_beyond_the_trained_sequence_lengths():
    from keras_siglip2.preprocessing import NaFlexImageConverter

    image = np.zeros((64, 64, 3), "uint8")
    converter = NaFlexImageConverter(16, 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converter(image)  # 1024: trained, no warning
    with pytest.warns(UserWarning, match=r"max_num_patches=1600 .*\(128, 256, 576, 784, 1024\)"):
        converter(image, max_num_patches=1600)
