"""Random-weight transformers SigLIP models and the same weights in ours,
loaded the way users load them: `save_pretrained` → `from_preset(dir)`."""

import torch

from keras_siglip2 import SigLIP2Backbone

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


def reference_pair(directory, naflex, num_layers=2, vocabulary_size=1000, image_size=224, seed=0):
    """(transformers model, our backbone loaded from its `save_pretrained` copy
    in `directory`)."""
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
    reference.save_pretrained(directory)
    return reference, SigLIP2Backbone.from_preset(str(directory))
