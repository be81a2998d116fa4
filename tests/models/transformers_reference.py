"""Random-weight transformers SigLIP models and the same weights in ours."""

import torch

from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.presets.huggingface import config_from_transformers, load_transformers_weights

B_WIDTHS = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12)


def randomize(module, seed=0):
    """Give every parameter non-trivial values (transformers zero-inits biases)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.1 * noise)
            elif name in ("logit_scale", "logit_bias"):
                param.copy_(0.5 * noise)
            else:
                param.copy_(0.02 * noise)
    return module.eval()


def reference_pair(naflex, num_layers=2, vocabulary_size=1000, image_size=224, seed=0):
    """(transformers model, our backbone with its converted weights)."""
    from transformers import Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

    text = dict(B_WIDTHS, num_hidden_layers=num_layers, vocab_size=vocabulary_size,
                max_position_embeddings=64)
    vision = dict(B_WIDTHS, num_hidden_layers=num_layers, patch_size=16)
    if naflex:
        config = Siglip2Config(text_config=text, vision_config=dict(vision, num_patches=256))
        reference = Siglip2Model(config)
    else:
        config = SiglipConfig(text_config=text, vision_config=dict(vision, image_size=image_size))
        reference = SiglipModel(config)
    randomize(reference, seed)
    ours = SigLIP2Backbone.from_config(config_from_transformers(config.to_dict()))
    state = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    load_transformers_weights(ours, state.__getitem__)
    return reference, ours
