"""keras-hub SigLIPBackbone presets (the Kaggle format) → `from_preset`, also via
a kagglehub cache laid out as kagglehub writes it (no network)."""

import os

import keras
import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone, configs
from keras_siglip2.presets import locate_preset
from tests.presets import checkpoints
from tests.presets.offline import no_network  # noqa: F401  (fixture)

TOLERANCE = 1e-5


def keras_hub_outputs(backbone, batch):
    out = backbone({"images": batch["images"], "token_ids": batch["token_ids"]})
    image = backbone.vision_encoder({"images": batch["images"]})
    text = backbone.text_encoder({"token_ids": batch["token_ids"]})

    def normalize(x):
        x = keras.ops.convert_to_numpy(x)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    return {
        "image_embeddings": normalize(image),
        "text_embeddings": normalize(text),
        "logits": keras.ops.convert_to_numpy(out["vision_logits"]),
    }


def test_keras_hub_preset_matches_keras_hub_outputs(tmp_path, rng):
    reference = checkpoints.keras_hub_backbone()
    reference.save_to_preset(str(tmp_path))
    assert locate_preset(str(tmp_path)).format == "keras_hub"
    ours = SigLIP2Backbone.from_preset(str(tmp_path))
    batch = checkpoints.inputs(rng, naflex=False)
    errors = checkpoints.max_errors(ours(batch), keras_hub_outputs(reference, batch))
    print("keras-hub preset → ours", errors)
    assert max(errors.values()) <= TOLERANCE, errors
    np.testing.assert_array_equal(
        ours.vision_encoder.patch_embedding.kernel.numpy(),
        reference.vision_encoder.embedding.patch_embedding.kernel.numpy().reshape(-1, 64),
    )


def test_keras_hub_preset_without_weights_builds_the_architecture(tmp_path):
    checkpoints.keras_hub_backbone(image_size=96, num_layers=1).save_to_preset(str(tmp_path))
    os.remove(tmp_path / "model.weights.h5")
    model = SigLIP2Backbone.from_preset(str(tmp_path), load_weights=False)
    assert model.vision_encoder.image_size == 96
    assert model.vision_encoder.num_layers == model.text_encoder.num_layers == 1


def _kaggle_cache_entry(cache, variation, version, backbone):
    """Lay out a whole-bundle kagglehub download: files + `<version>.complete`."""
    model_dir = cache / "models" / "keras" / "siglip" / "keras" / variation
    backbone.save_to_preset(str(model_dir / str(version)))
    (model_dir / f"{version}.complete").touch()
    return model_dir


def test_kaggle_handle_and_alias_load_from_the_kagglehub_cache_offline(
    tmp_path, rng, monkeypatch, no_network
):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    reference = checkpoints.keras_hub_backbone(seed=3)
    _kaggle_cache_entry(tmp_path, "siglip2_base_patch16_224", 1, reference)
    batch = checkpoints.inputs(rng, naflex=False)
    expected = keras_hub_outputs(reference, batch)

    versioned = SigLIP2Backbone.from_preset("kaggle://keras/siglip/keras/siglip2_base_patch16_224/1")
    unversioned = locate_preset("kaggle://keras/siglip/keras/siglip2_base_patch16_224")
    assert unversioned.format == "keras_hub"
    assert unversioned.path == str(tmp_path / "models/keras/siglip/keras/siglip2_base_patch16_224/1")
    assert max(checkpoints.max_errors(versioned(batch), expected).values()) <= TOLERANCE

    # The alias resolves to the same Kaggle preset. The cached stand-in is not
    # a real B/16, which the loader points out.
    assert configs.CHECKPOINTS["siglip2_base_patch16_224"]["kaggle_handle"]
    with pytest.warns(UserWarning, match="checkpoint table"):
        alias = SigLIP2Backbone.from_preset("b16")
    assert max(checkpoints.max_errors(alias(batch), expected).values()) <= TOLERANCE
    assert no_network.attempts == []


def test_newest_cached_kaggle_version_is_used_for_an_unversioned_handle(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    _kaggle_cache_entry(tmp_path, "v", 1, checkpoints.keras_hub_backbone(num_layers=1))
    _kaggle_cache_entry(tmp_path, "v", 2, checkpoints.keras_hub_backbone(num_layers=2))
    model = SigLIP2Backbone.from_preset("kaggle://keras/siglip/keras/v", load_weights=False)
    assert model.vision_encoder.num_layers == 2


def test_cached_config_without_weights_fails_fast_offline_but_builds_without_weights(
    tmp_path, monkeypatch, no_network
):
    """Only config.json was downloaded (kagglehub's per-file marker)."""
    from keras_siglip2.presets import PresetDownloadError

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    checkpoints.keras_hub_backbone(num_layers=1).save_to_preset(str(tmp_path / "src"))
    model_dir = tmp_path / "cache" / "models" / "keras" / "siglip" / "keras" / "v"
    (model_dir / "3").mkdir(parents=True)
    (model_dir / "3" / "config.json").write_bytes((tmp_path / "src" / "config.json").read_bytes())
    (model_dir / ".complete" / "3").mkdir(parents=True)
    (model_dir / ".complete" / "3" / "config.json.complete").touch()

    handle = "kaggle://keras/siglip/keras/v"
    assert SigLIP2Backbone.from_preset(handle, load_weights=False).vision_encoder.num_layers == 1
    with pytest.raises(PresetDownloadError) as info:
        SigLIP2Backbone.from_preset(handle)
    message = str(info.value)
    assert "kaggle://keras/siglip/keras/v/3" in message and str(tmp_path / "cache") in message
    assert "kagglehub.model_download('keras/siglip/keras/v/3')" in message
