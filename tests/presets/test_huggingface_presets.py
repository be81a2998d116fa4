"""Hugging Face checkpoints written by transformers' `save_pretrained` → `from_preset`."""

import json

import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
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
    (tmp_path / "tokenizer.model").write_bytes(b"sentencepiece model bytes")
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
