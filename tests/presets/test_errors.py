"""Clear, fast errors: offline downloads, unknown names, broken or mismatched files."""

import json
import time

import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.presets import PresetDownloadError, locate_preset
from keras_siglip2.presets.hubs import probe
from tests.presets import checkpoints
from tests.presets.offline import empty_caches, no_network  # noqa: F401  (fixtures)


def test_offline_alias_fails_fast_naming_sources_caches_and_remedies(empty_caches, no_network):
    kaggle, hf = empty_caches
    start = time.monotonic()
    with pytest.raises(PresetDownloadError) as info:
        SigLIP2Backbone.from_preset("so400m")
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert elapsed < 5, elapsed
    assert no_network.attempts, "the hubs were never tried"
    for needle in (
        "siglip2_so400m_patch14_384",
        "kaggle://keras/siglip/keras/siglip2_so400m_patch14_384",
        "hf://google/siglip2-so400m-patch14-384",
        str(kaggle),
        str(hf),
        "kagglehub.model_download(",
        "hf download google/siglip2-so400m-patch14-384",
        "local path",
        "load_weights=False",
    ):
        assert needle in message, (needle, message)


def test_offline_hf_handle_fails_fast(empty_caches, no_network):
    start = time.monotonic()
    with pytest.raises(PresetDownloadError, match="hf://google/siglip2-base-patch16-224.*huggingface"):
        SigLIP2Backbone.from_preset("hf://google/siglip2-base-patch16-224")
    assert time.monotonic() - start < 5


def test_hf_handle_loads_from_the_hub_cache_offline(tmp_path, empty_caches, no_network, rng):
    """A repo already in the Hugging Face cache loads with no network request."""
    _, hf = empty_caches
    reference = checkpoints.transformers_model(naflex=False)
    snapshot = hf / "models--org--tiny" / "snapshots" / ("0" * 40)
    reference.save_pretrained(snapshot)
    (hf / "models--org--tiny" / "refs").mkdir()
    (hf / "models--org--tiny" / "refs" / "main").write_text("0" * 40)
    model = SigLIP2Backbone.from_preset("hf://org/tiny")
    batch = checkpoints.inputs(rng, naflex=False)
    errors = checkpoints.max_errors(model(batch), checkpoints.transformers_outputs(reference, batch))
    assert max(errors.values()) <= 1e-5
    # Whether a sharded index exists was unknown offline (one failed probe). A
    # cache written online records the hub's 404 in `.no_exist`; then loading
    # makes no network request at all.
    assert len(no_network.attempts) == 1
    no_network.attempts.clear()
    no_exist = hf / "models--org--tiny" / ".no_exist" / ("0" * 40)
    no_exist.mkdir(parents=True)
    (no_exist / "model.safetensors.index.json").touch()
    SigLIP2Backbone.from_preset("hf://org/tiny")
    assert no_network.attempts == []


def test_probe_is_bounded_by_its_timeout(monkeypatch):
    import socket

    def hang(*args, **kwargs):  # a resolver/connection that answers too late
        time.sleep(3)
        raise OSError("too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    assert probe("https://example.invalid", timeout=0.5) is not None
    assert time.monotonic() - start < 2


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean.*so400m"):
        SigLIP2Backbone.from_preset("so400n")


def test_missing_local_path_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such preset"):
        SigLIP2Backbone.from_preset(str(tmp_path / "nowhere" / "model.npz"))


def test_unsupported_scheme_and_bad_handles():
    with pytest.raises(ValueError, match="Unsupported preset scheme"):
        locate_preset("s3://bucket/model")
    with pytest.raises(ValueError, match="Invalid Kaggle handle"):
        locate_preset("kaggle://keras/siglip")
    with pytest.raises(ValueError, match="Invalid Hugging Face handle"):
        locate_preset("hf://just-a-name")


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SigLIP2Backbone.from_preset(str(tmp_path))


def test_config_and_weights_of_different_shapes_is_a_clear_error(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["text_config"]["vocab_size"] = 999
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="token_embedding.weight.*\\(1000, 64\\).*\\(999, 64\\)"):
        SigLIP2Backbone.from_preset(str(tmp_path))


def test_shard_index_pointing_outside_the_checkpoint_is_refused(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path, max_shard_size="100KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = "../../elsewhere.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="relative paths"):
        SigLIP2Backbone.from_preset(str(tmp_path))


def test_truncated_keras_weights_are_a_clear_error(tmp_path):
    from keras_siglip2 import configs

    SigLIP2Backbone.from_config(configs.tiny()).save_to_preset(str(tmp_path))
    weights = tmp_path / "model.weights.h5"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SigLIP2Backbone.from_preset(str(tmp_path))


def test_other_checkpoints_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(ValueError, match="model_type 'clip'"):
        SigLIP2Backbone.from_preset(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        SigLIP2Backbone.from_preset(str(tmp_path))


def test_non_siglip_activation_is_refused(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision_config"]["hidden_act"] = "relu"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="relu"):
        SigLIP2Backbone.from_preset(str(tmp_path), load_weights=False)


def test_nan_weights_are_refused(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    params["params/b"] = np.array([np.nan], "float32")
    np.savez(tmp_path / "nan.npz", **params)
    with pytest.raises(ValueError, match="params/b.*NaN"):
        SigLIP2Backbone.from_preset(str(tmp_path / "nan.npz"))
