"""Hugging Face checkpoints written by transformers' `save_pretrained` → `from_preset`."""

import json
from pathlib import Path

import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.data import demo_vocabulary_path
from keras_siglip2.presets import locate_preset
from tests.presets import checkpoints

TOLERANCE = 1e-5


@pytest.mark.parametrize(
    "naflex, shard",
    [
        pytest.param(False, None, marks=pytest.mark.backends),
        (False, "100KB"),
        (True, None),
        (True, "100KB"),
    ],
)
def test_saved_transformers_checkpoint_matches_torch_outputs(tmp_path, rng, naflex, shard):
    reference = checkpoints.transformers_model(naflex)
    kwargs = {"max_shard_size": shard} if shard else {}
    reference.save_pretrained(tmp_path, **kwargs)
    files = sorted(p.name for p in tmp_path.iterdir())
    if shard:
        assert "model.safetensors.index.json" in files and len(files) > 3, files
    else:
        assert "model.safetensors" in files, files

    preset = locate_preset(str(tmp_path))
    assert preset.format == "transformers"
    ours = SigLIP2Backbone.from_preset(str(tmp_path))
    assert ours.naflex == naflex

    batch = checkpoints.inputs(rng, naflex)
    errors = checkpoints.max_errors(ours(batch), checkpoints.transformers_outputs(reference, batch))
    print("transformers checkpoint → ours", "NaFlex" if naflex else "fixed", shard, errors)
    assert max(errors.values()) <= TOLERANCE, errors


def test_tokenizer_and_naflex_patch_budget_come_from_the_repo_files(tmp_path):
    checkpoints.transformers_model(naflex=True).save_pretrained(tmp_path)
    assert locate_preset(str(tmp_path)).tokenizer_file is None
    (tmp_path / "tokenizer.model").write_bytes(Path(demo_vocabulary_path()).read_bytes())
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"max_num_patches": 576}))
    preset = locate_preset(str(tmp_path))
    assert preset.tokenizer_file == str(tmp_path / "tokenizer.model")
    model = SigLIP2Backbone.from_preset(str(tmp_path), load_weights=False)
    assert model.vision_encoder.max_num_patches == 576


def test_load_weights_false_reads_only_the_config(tmp_path):
    checkpoints.transformers_model(naflex=False).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()  # weights are not needed
    model = SigLIP2Backbone.from_preset(str(tmp_path), load_weights=False)
    assert model.vision_encoder.image_size == checkpoints.IMAGE_SIZE
    assert model.text_encoder.vocabulary_size == checkpoints.VOCABULARY


def test_bfloat16_safetensors_are_read(tmp_path, rng):
    import torch

    reference = checkpoints.transformers_model(naflex=False).to(torch.bfloat16)
    reference.save_pretrained(tmp_path)
    ours = SigLIP2Backbone.from_preset(str(tmp_path))
    state = reference.state_dict()
    expected = state["text_model.embeddings.token_embedding.weight"].float().numpy()
    np.testing.assert_array_equal(ours.text_encoder.embedding.token_embeddings.numpy(), expected)


@pytest.mark.parametrize("naflex", [False, True], ids=["fixed", "naflex"])
def test_config_json_with_only_non_default_values_is_completed(tmp_path, rng, naflex):
    """Hub config.json files list only values that differ from transformers'
    defaults (a B/16 vision_config can be almost empty)."""
    from transformers import Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

    text = dict(vocab_size=checkpoints.VOCABULARY, num_hidden_layers=1)
    vision = dict(num_hidden_layers=1)  # B widths, patch 16, 224 / 256 patches: defaults
    cls, config_cls = (Siglip2Model, Siglip2Config) if naflex else (SiglipModel, SiglipConfig)
    reference = checkpoints.randomize(cls(config_cls(text_config=text, vision_config=vision)))
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["text_config"] = dict(text, model_type=config["text_config"]["model_type"])
    config["vision_config"] = dict(vision, model_type=config["vision_config"]["model_type"])
    (tmp_path / "config.json").write_text(json.dumps(config))

    ours = SigLIP2Backbone.from_preset(str(tmp_path))
    assert ours.vision_encoder.hidden_dim == 768 and ours.text_encoder.sequence_length == 64
    if naflex:
        assert ours.vision_encoder.position_grid_size == 16
        grids = [(16, 16), (8, 20)]
        patches = rng.uniform(-1, 1, (2, 256, 768)).astype("float32")
        mask = np.zeros((2, 256), bool)
        for i, (h, w) in enumerate(grids):
            mask[i, : h * w] = True
        batch = {"patches": patches, "patch_mask": mask, "spatial_shapes": np.array(grids, "int32")}
    else:
        assert ours.vision_encoder.image_size == 224
        batch = {"images": rng.uniform(-1, 1, (2, 224, 224, 3)).astype("float32")}
    batch["token_ids"] = checkpoints.token_ids(rng, 2)
    errors = checkpoints.max_errors(ours(batch), checkpoints.transformers_outputs(reference, batch))
    assert max(errors.values()) <= TOLERANCE, errors
