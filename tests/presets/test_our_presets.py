"""Our own preset format: save_to_preset → from_preset, and building every
released architecture offline with `load_weights=False`."""

import json

import keras
import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone, configs
from keras_siglip2.presets import loader, locate_preset
from keras_siglip2.presets.weights import build_without_values
from tests.presets.offline import no_network  # noqa: F401  (fixture)


def _random_backbone(naflex):
    model = SigLIP2Backbone.from_config(configs.tiny(naflex=naflex))
    rng = np.random.default_rng(0)
    for weight in model.weights:  # every weight distinct from its initial value
        weight.assign(rng.standard_normal(tuple(weight.shape)).astype(weight.dtype))
    return model


@pytest.mark.backends
@pytest.mark.parametrize("naflex", [False, True], ids=["fixed", "naflex"])
def test_save_to_preset_then_from_preset_is_bit_exact(tmp_path, naflex):
    model = _random_backbone(naflex)
    model.save_to_preset(str(tmp_path))
    assert {"config.json", "model.weights.h5", "metadata.json"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "config.json").read_text())["registered_name"] == (
        "keras_siglip2>SigLIP2Backbone"
    )
    assert locate_preset(str(tmp_path)).format == "keras"
    loaded = SigLIP2Backbone.from_preset(str(tmp_path))
    assert loaded.get_config()["vision"] == model.get_config()["vision"]
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), err_msg=a.path
        )


def test_keras_hub_preset_machinery_loads_our_format(tmp_path):
    import keras_hub

    model = _random_backbone(naflex=False)
    model.save_to_preset(str(tmp_path))
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert type(loaded) is SigLIP2Backbone
    np.testing.assert_array_equal(
        loaded.logit_head.bias.numpy(), model.logit_head.bias.numpy()
    )


def test_dtype_is_applied_when_loading(tmp_path):
    _random_backbone(naflex=False).save_to_preset(str(tmp_path))
    loaded = SigLIP2Backbone.from_preset(str(tmp_path), dtype="bfloat16")
    assert loaded.vision_encoder.patch_embedding.kernel.dtype == "bfloat16"


def test_every_alias_builds_its_architecture_without_network(monkeypatch, no_network):
    built = []
    def record(cls, config, dtype=None):
        built.append(config)
        return cls.from_config(configs.tiny())

    monkeypatch.setattr(loader, "build_backbone", record)
    for alias, name in sorted(configs.ALIASES.items()):
        built.clear()
        SigLIP2Backbone.from_preset(alias, load_weights=False)
        assert built == [configs.checkpoint_config(name)], alias
    assert no_network.attempts == []


@pytest.mark.parametrize("alias", ["b16", "b32", "b16-naflex"])
def test_base_presets_without_weights_have_the_published_parameter_counts(alias, no_network):
    model = _shapes_only(alias)
    facts = configs.CHECKPOINTS[configs.resolve_name(alias)]
    assert model.count_params() == facts["params"]
    assert model.naflex == (facts["image_size"] is None)
    assert no_network.attempts == []


@pytest.mark.slow
def test_large_presets_without_weights_have_the_published_parameter_counts(no_network):
    # One per trunk size (the others differ only in resolution, checked above
    # through the configs they build).
    for alias in ("l16", "so400m", "so400m16-naflex", "g16"):
        facts = configs.CHECKPOINTS[configs.resolve_name(alias)]
        assert _shapes_only(alias).count_params() == facts["params"], alias
    assert no_network.attempts == []


def _shapes_only(alias):
    """The preset's architecture with shaped variables and (on JAX) no values:
    counting parameters needs no initialisation of billions of them."""
    return build_without_values(lambda: SigLIP2Backbone.from_preset(alias, load_weights=False))
