"""Broken preset files fail with an error naming the file and what to do; a
config that disagrees with its weights, NaN weights or a garbage `dtype` never
load silently; hubs that accept connections and never answer fail within the
configured time with the usual offline message."""

import json
import shutil
import time

import h5py
import numpy as np
import pytest

from keras_siglip2 import SigLIP2, SigLIP2Backbone
from keras_siglip2.presets import PresetDownloadError
from keras_siglip2.presets.hubs import DEFAULT_HUB_TIMEOUT_SECONDS, hub_timeout
from tests.presets import checkpoints
from tests.presets.offline import empty_caches, stalled_server  # noqa: F401  (fixtures)
from tests.training.helpers import tiny_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny NaFlex `SigLIP2` with its LocCa decoder, saved as our preset."""
    path = tmp_path_factory.mktemp("preset") / "tiny"
    tiny_model(naflex=True, seed=0, locca=True).save_to_preset(path)
    return path


def _config(edit):
    def change(path):
        config = json.loads((path / "config.json").read_text())
        edit(config["config"])
        (path / "config.json").write_text(json.dumps(config))
    return change


def _garbage(name):
    return lambda path: (path / name).write_bytes(b"garbage\x00\x01\x02")


def _nan_weight(path):
    with h5py.File(path / "model.weights.h5", "r+") as f:
        names = []
        f.visititems(lambda n, item: names.append(n) if isinstance(item, h5py.Dataset) else None)
        array = f[names[0]][...]
        array.flat[0] = np.nan
        f[names[0]][...] = array


def _add(config, tower, key, amount):
    config[tower][key] += amount


BROKEN = [
    ("fewer-layers", _config(lambda c: _add(c, "vision", "num_layers", -1)),
     r"model.weights.h5 holds 92 arrays but the architecture in config.json has 76"),
    ("more-layers", _config(lambda c: _add(c, "text", "num_layers", 1)),
     r"holds 92 arrays but .* has 108 variables.*save_to_preset"),
    ("garbage-dtype", _config(lambda c: c.update(dtype="garbage")), r"config.json .*garbage.*Fix the file"),
    ("string-width", _config(lambda c: c["vision"].update(hidden_dim="wide")), r"config.json .*'wide'"),
    ("nan-weights", _nan_weight, r"NaN or infinite values in 'text_encoder/.*use an earlier one"),
    ("corrupt-weights", _garbage("model.weights.h5"), r"model.weights.h5 is not a readable HDF5"),
    ("corrupt-config", _garbage("config.json"), r"config.json is not valid JSON"),
    ("corrupt-task-weights", _garbage("siglip2_task.safetensors"),
     r"siglip2_task.safetensors is not a readable safetensors file.*save_to_preset"),
    ("corrupt-task-config", _garbage("siglip2_task.json"), r"siglip2_task.json is not valid JSON"),
    ("corrupt-preprocessor", _garbage("preprocessor.json"), r"preprocessor.json is not valid JSON"),
    ("corrupt-vocabulary", _garbage("assets/tokenizer/vocabulary.spm"),
     r"vocabulary.spm is not a readable SentencePiece model file.*Download it again"),
    ("preprocessor-wrong-types", lambda p: (p / "preprocessor.json").write_text('{"class_name": 5}'),
     r"preprocessor.json does not describe a preprocessor"),
]


@pytest.mark.backends
@pytest.mark.parametrize("breaks, message", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_presets_name_the_file_and_the_remedy(saved, breaks, message, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    breaks(broken)
    with pytest.raises(ValueError, match=message):
        SigLIP2.from_preset(broken)


@pytest.mark.backends
def test_the_intact_preset_loads(saved):
    model = SigLIP2.from_preset(saved)
    assert model.locca and model.backbone.naflex


def test_corrupt_tokenizer_of_a_hugging_face_checkpoint(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(ValueError, match="tokenizer.model is not a readable SentencePiece"):
        SigLIP2.from_preset(str(tmp_path))


@pytest.mark.backends
def test_bfloat16_weights_are_checked_for_nan(tmp_path):
    from keras_siglip2 import configs

    model = SigLIP2Backbone.from_config({**configs.tiny(), "dtype": "bfloat16"})
    model.logit_head.bias.assign(np.array(np.inf))
    model.save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match="NaN or infinite values in 'logit_head/bias'"):
        SigLIP2Backbone.from_preset(str(tmp_path), dtype="bfloat16")


# ---------------------------------------------------------------- hubs
def test_hub_timeout_defaults_to_20_seconds_and_is_configurable(monkeypatch):
    monkeypatch.delenv("KERAS_SIGLIP2_HUB_TIMEOUT", raising=False)
    assert hub_timeout() == DEFAULT_HUB_TIMEOUT_SECONDS == 20
    monkeypatch.setenv("KERAS_SIGLIP2_HUB_TIMEOUT", "2.5")
    assert hub_timeout() == 2.5
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv("KERAS_SIGLIP2_HUB_TIMEOUT", bad)
        with pytest.raises(ValueError, match="KERAS_SIGLIP2_HUB_TIMEOUT must be a positive number"):
            hub_timeout()


@pytest.fixture
def fresh_probes(monkeypatch):
    from keras_siglip2.presets import hubs

    monkeypatch.setattr(hubs, "_recent_failures", {})
    monkeypatch.setenv("KERAS_SIGLIP2_HUB_TIMEOUT", "2")
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_a_hub_that_never_answers_fails_in_time(stalled_server, empty_caches, fresh_probes, monkeypatch):
    import huggingface_hub.constants

    url, accepted = stalled_server
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)  # what HF_ENDPOINT sets
    start = time.monotonic()
    with pytest.raises(PresetDownloadError) as info:
        SigLIP2Backbone.from_preset("hf://google/siglip2-base-patch16-224")
    # Our probe's 2 s, plus huggingface_hub's own 3 s telemetry request (its
    # "agent harnesses" registry, fetched once a process even for cached files).
    assert time.monotonic() - start < 2 + 3 + 2
    assert accepted, "the stalled server was never reached"
    message = str(info.value)
    for needle in ("Could not fetch", url.removeprefix("http://"), "within 2 s",
                   "KERAS_SIGLIP2_HUB_TIMEOUT", "hf download google/siglip2-base-patch16-224",
                   "local path"):
        assert needle in message, (needle, message)


def test_a_stalled_proxy_fails_both_hubs_of_an_alias_in_time(
    stalled_server, empty_caches, fresh_probes, monkeypatch
):
    url, accepted = stalled_server
    monkeypatch.setenv("HTTPS_PROXY", url)
    start = time.monotonic()
    with pytest.raises(PresetDownloadError) as info:
        SigLIP2Backbone.from_preset("b16")
    # Kaggle's probe waits 2 s; the Hugging Face one knows the proxy failed
    # (plus huggingface_hub's 3 s telemetry request, see above).
    assert time.monotonic() - start < 2 + 3 + 2
    assert accepted
    message = str(info.value)
    assert "kaggle://keras/siglip/keras/siglip2_base_patch16_224" in message
    assert "hf://google/siglip2-base-patch16-224" in message
    assert message.count("through the proxy 127.0.0.1") == 2
