"""Backbone structure, compilation and input errors. Serialization, `.keras`
files and dtype policies: `tests/models/test_common_checks.py`."""

import keras
import numpy as np
import pytest

import keras_siglip2 as ks
from keras_siglip2 import configs
from keras_siglip2.presets.weights import build_without_values


def tiny_inputs(rng, naflex=False, batch=2, texts=3):
    token_ids = rng.integers(0, 1000, (texts, 16)).astype("int32")
    if naflex:
        patches = rng.uniform(-1, 1, (batch, 16, 192)).astype("float32")
        mask = np.ones((batch, 16), bool)
        mask[0, 6:] = False  # image 0 is a 2×3 grid with 10 padding patches
        patches[0, 6:] = 0
        shapes = np.array([[2, 3]] + [[4, 4]] * (batch - 1), "int32")
        return {"patches": patches, "patch_mask": mask, "spatial_shapes": shapes,
                "token_ids": token_ids}
    images = rng.uniform(-1, 1, (batch, 32, 32, 3)).astype("float32")
    return {"images": images, "token_ids": token_ids}


def test_parameter_arithmetic_equals_published_counts():
    for name, facts in configs.CHECKPOINTS.items():
        counted = configs.count_parameters(configs.checkpoint_config(name))
        if facts["params"] is not None:
            assert counted == facts["params"], name


@pytest.mark.parametrize(
    "name", ["b16", "b32", "b16-naflex", "b16-512"]
)
def test_built_base_models_have_published_parameter_counts(name):
    config = configs.checkpoint_config(name)
    model = build_without_values(lambda: ks.SigLIP2Backbone.from_config(config))
    assert model.count_params() == configs.count_parameters(config)
    resolved = configs.resolve_name(name)
    if configs.CHECKPOINTS[resolved]["params"]:
        assert model.count_params() == configs.CHECKPOINTS[resolved]["params"]


@pytest.mark.parametrize("naflex", [False, True])
def test_training_initialisation_and_output_shapes(rng, naflex):
    model = ks.SigLIP2Backbone.from_config(configs.tiny(naflex=naflex))
    assert float(model.logit_head.log_temperature.numpy()) == pytest.approx(np.log(10.0))
    assert float(model.logit_head.bias.numpy()) == pytest.approx(-10.0)
    out = model(tiny_inputs(rng, naflex))
    assert tuple(out["logits"].shape) == (2, 3)
    assert tuple(out["image_embeddings"].shape) == (2, 32)
    assert tuple(out["patch_features"].shape) == (2, 16, 32)
    norms = np.linalg.norm(keras.ops.convert_to_numpy(out["text_embeddings"]), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


@pytest.mark.backends
@pytest.mark.parametrize("naflex", [False, True])
def test_compiled_predict_equals_eager_call(rng, naflex):
    model = ks.SigLIP2Backbone.from_config(configs.tiny(naflex=naflex))
    inputs = tiny_inputs(rng, naflex, batch=3, texts=3)
    eager = keras.ops.convert_to_numpy(model(inputs)["logits"])
    compiled = model.predict(inputs, batch_size=3, verbose=0)["logits"]
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_naflex_position_resize_is_per_image(rng):
    """Each image's positions depend on its own grid only, not on the batch."""
    model = ks.SigLIP2Backbone.from_config(configs.tiny(naflex=True))
    layer = model.vision_encoder.position_embedding
    shapes = np.array([[2, 3], [4, 4], [1, 16]], "int32")
    together = keras.ops.convert_to_numpy(layer.resized_positions(shapes, 16))
    for i in range(3):
        alone = keras.ops.convert_to_numpy(layer.resized_positions(shapes[i : i + 1], 16))
        np.testing.assert_allclose(together[i], alone[0], atol=1e-6)
    # The identity grid reproduces the table; padding rows take entry (0, 0).
    table = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(together[1], table, atol=1e-6)
    np.testing.assert_allclose(together[0, 6:], np.repeat(together[0, :1], 10, 0), atol=1e-6)


class TestBadInput:
    @pytest.fixture(scope="class")
    def fixed(self):
        return ks.SigLIP2Backbone.from_config(configs.tiny())

    @pytest.fixture(scope="class")
    def naflex(self):
        return ks.SigLIP2Backbone.from_config(configs.tiny(naflex=True))

    def test_wrong_rank(self, fixed, rng):
        with pytest.raises(ValueError, match=r"shape \(batch, 32, 32, 3\)"):
            fixed.vision_encoder({"images": np.zeros((32, 32, 3), "float32")})

    def test_channels(self, fixed):
        with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
            fixed.vision_encoder({"images": np.zeros((1, 32, 32, 4), "float32")})

    def test_fixed_resolution_mismatch(self, fixed):
        with pytest.raises(ValueError, match="takes 32×32 images; got 64×48"):
            fixed.vision_encoder({"images": np.zeros((1, 64, 48, 3), "float32")})

    def test_missing_key(self, fixed):
        with pytest.raises(ValueError, match="takes a dict with keys"):
            fixed.vision_encoder({"pixels": np.zeros((1, 32, 32, 3), "float32")})

    def test_patch_width(self, naflex, rng):
        inputs = tiny_inputs(rng, naflex=True)
        inputs["patches"] = inputs["patches"][..., :100]
        with pytest.raises(ValueError, match="patch_size²·3 = 192"):
            naflex.vision_encoder(inputs)

    def test_patch_count_mismatch(self, naflex, rng):
        inputs = tiny_inputs(rng, naflex=True)
        inputs["patch_mask"] = inputs["patch_mask"][:, :8]
        with pytest.raises(ValueError, match="16 patches but `patch_mask` has 8"):
            naflex.vision_encoder(inputs)

    def test_spatial_shape_exceeds_valid_patches(self, naflex, rng):
        inputs = tiny_inputs(rng, naflex=True)
        inputs["spatial_shapes"] = np.array([[3, 3], [4, 4]], "int32")
        with pytest.raises(ValueError, match=r"Image 0: spatial shape \(3, 3\) needs its first h·w = 9"):
            naflex.vision_encoder(inputs)

    def test_token_out_of_range(self, fixed):
        ids = np.full((1, 16), 1000, "int32")
        with pytest.raises(ValueError, match=r"must lie in \[0, 1000\)"):
            fixed.text_encoder({"token_ids": ids})

    def test_sequence_too_long(self, fixed):
        with pytest.raises(ValueError, match="exactly 16 positions"):
            fixed.text_encoder({"token_ids": np.zeros((1, 17), "int32")})

    def test_batch_mismatch(self, naflex, rng):
        inputs = tiny_inputs(rng, naflex=True)
        inputs["spatial_shapes"] = inputs["spatial_shapes"][:1]
        with pytest.raises(ValueError, match="batch 2 but `spatial_shapes` has batch 1"):
            naflex.vision_encoder(inputs)
