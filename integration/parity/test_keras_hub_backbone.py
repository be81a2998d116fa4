"""Parity with keras-hub's SigLIPBackbone for a fixed-resolution config at real
B widths (768 wide, 12 heads, MLP 3072; depth 2), through keras-hub's own
preset files."""

import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
from tests.presets import checkpoints
from tests.presets.test_keras_hub_presets import keras_hub_outputs

pytestmark = [pytest.mark.parity, pytest.mark.backends]
TOLERANCE = 1e-5


def test_b_width_keras_hub_preset_matches_keras_hub(tmp_path, rng):
    import keras

    reference = checkpoints.keras_hub_backbone(
        hidden_dim=768, num_layers=2, num_heads=12, intermediate_dim=3072, image_size=224,
        vocabulary_size=1000, seed=4,
    )
    reference.save_to_preset(str(tmp_path))
    ours = SigLIP2Backbone.from_preset(str(tmp_path))
    batch = {
        "images": rng.uniform(-1, 1, (2, 224, 224, 3)).astype("float32"),
        "token_ids": checkpoints.token_ids(rng, 3),
    }
    expected = keras_hub_outputs(reference, batch)
    errors = checkpoints.max_errors(ours(batch), expected)
    print(keras.backend.backend(), "keras-hub SigLIPBackbone B-width parity", errors)
    assert max(errors.values()) <= TOLERANCE, errors
    # Not vacuous: the embeddings differ between images and texts.
    assert np.abs(expected["logits"] - expected["logits"].mean()).max() > 1e-3
