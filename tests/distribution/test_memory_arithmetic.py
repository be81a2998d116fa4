"""The parameter arithmetic behind docs/distributed.md's memory table."""

import pytest

from keras_siglip2 import configs
from tests.training.helpers import COORDINATE_BINS, tiny_model


def test_decoder_parameter_arithmetic_matches_a_built_decoder():
    model = tiny_model(seed=None)
    text = model.backbone.text_encoder.get_config()
    vision_width = model.backbone.vision_encoder.hidden_dim
    assert model.decoder.count_params() == configs.locca_decoder_parameters(
        text, COORDINATE_BINS, vision_width
    )


def test_so400m_training_state():
    backbone = configs.CHECKPOINTS["siglip2_so400m_patch14_384"]["params"]
    total = configs.checkpoint_parameters("so400m")
    config = configs.checkpoint_config("so400m")
    assert total - backbone == configs.locca_decoder_parameters(
        config["text"], vision_width=config["vision"]["hidden_dim"]
    )
    one = configs.training_state_bytes_per_device(total)
    assert one == 16 * total  # weights, gradients, two Adam moments in float32
    assert configs.training_state_bytes_per_device(total, 8) == pytest.approx(one / 8)
