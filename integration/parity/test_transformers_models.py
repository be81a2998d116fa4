"""Our towers vs transformers' SiglipModel / Siglip2Model at real B widths."""

import keras
import numpy as np
import pytest
import torch

from tests.models.transformers_reference import reference_pair

pytestmark = [pytest.mark.parity, pytest.mark.backends]
TOLERANCE = 1e-5


def max_abs(ours, theirs):
    return float(np.max(np.abs(keras.ops.convert_to_numpy(ours) - theirs.detach().numpy())))


def token_ids(rng, batch, vocabulary_size=1000):
    ids = rng.integers(4, vocabulary_size, (batch, 64)).astype("int32")
    for row, length in enumerate(rng.integers(1, 64, batch)):
        ids[row, length - 1] = 1  # EOS, then padding
        ids[row, length:] = 0
    return ids


def test_fixed_resolution_matches_siglip_model(rng, tmp_path):
    reference, ours = reference_pair(tmp_path, naflex=False)
    images = rng.uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    ids = token_ids(rng, 3)
    with torch.no_grad():
        theirs = reference(
            pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2)),
            input_ids=torch.from_numpy(ids).long(),
        )
    out = ours({"images": images, "token_ids": ids})
    errors = {
        "image_embeddings": max_abs(out["image_embeddings"], theirs.image_embeds),
        "text_embeddings": max_abs(out["text_embeddings"], theirs.text_embeds),
        "logits": max_abs(out["logits"], theirs.logits_per_image),
        "patch_features": max_abs(
            out["patch_features"], theirs.vision_model_output.last_hidden_state
        ),
    }
    print(keras.backend.backend(), "fixed-res parity", errors)
    assert max(errors.values()) <= TOLERANCE, errors


# (h, w) grids of 256 patches: wide (upsampled) sides, sides below 16
# (antialiased downsampling), padding (12·21 = 252, 5·7 = 35 < 256).
NAFLEX_GRIDS = [(1, 256), (4, 64), (8, 32), (16, 16), (12, 21), (5, 7), (64, 4)]


def naflex_batch(rng, grids, num_patches=256):
    patches = rng.uniform(-1, 1, (len(grids), num_patches, 16 * 16 * 3)).astype("float32")
    mask = np.zeros((len(grids), num_patches), bool)
    for i, (h, w) in enumerate(grids):
        mask[i, : h * w] = True
        patches[i, h * w :] = 0.0
    return patches, mask, np.array(grids, "int32")


def test_naflex_matches_siglip2_model(rng, tmp_path):
    reference, ours = reference_pair(tmp_path, naflex=True)
    patches, mask, shapes = naflex_batch(rng, NAFLEX_GRIDS)
    ids = token_ids(rng, 2)
    with torch.no_grad():
        theirs = reference(
            pixel_values=torch.from_numpy(patches),
            pixel_attention_mask=torch.from_numpy(mask.astype("int64")),
            spatial_shapes=torch.from_numpy(shapes.astype("int64")),
            input_ids=torch.from_numpy(ids).long(),
        )
    out = ours({"patches": patches, "patch_mask": mask, "spatial_shapes": shapes, "token_ids": ids})
    valid = mask[..., None]
    errors = {
        "image_embeddings": max_abs(out["image_embeddings"], theirs.image_embeds),
        "text_embeddings": max_abs(out["text_embeddings"], theirs.text_embeds),
        "logits": max_abs(out["logits"], theirs.logits_per_image),
        # Padded tokens carry no meaning (the reference computes them differently).
        "patch_features": float(np.max(np.abs(
            (keras.ops.convert_to_numpy(out["patch_features"])
             - theirs.vision_model_output.last_hidden_state.numpy()) * valid))),
    }
    print(keras.backend.backend(), "NaFlex parity", errors)
    assert max(errors.values()) <= TOLERANCE, errors
