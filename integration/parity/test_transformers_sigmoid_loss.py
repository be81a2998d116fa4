"""`sigmoid_loss` equals the loss of transformers' SiglipModel."""

import math

import keras
import numpy as np
import pytest

from keras_siglip2.losses import sigmoid_loss


@pytest.mark.backends
@pytest.mark.parity
@pytest.mark.slow  # importing torch + transformers takes seconds
def test_sigmoid_loss_equals_transformers_siglip_forward(rng):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.SiglipConfig(
        text_config=dict(
            vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=8,
        ),
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, image_size=8, patch_size=4,
        ),
    )
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-2.0)
        out = model(
            input_ids=torch.randint(0, 50, (5, 8)),
            pixel_values=torch.randn(5, 3, 8, 8),
            return_loss=True,
        )
    ours = sigmoid_loss(
        out.image_embeds.numpy(),
        out.text_embeds.numpy(),
        model.logit_scale.item(),
        model.logit_bias.item(),
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), out.loss.item(), rtol=1e-5)
