"""Training losses: pure functions of tensors (keras.ops, every backend), no model state."""

from keras_siglip2.losses.captioning import chunked_cross_entropy
from keras_siglip2.losses.captioning import cross_entropy
from keras_siglip2.losses.curation import learnability_selection
from keras_siglip2.losses.curation import per_example_sigmoid_loss
from keras_siglip2.losses.distillation import distillation_loss
from keras_siglip2.losses.distillation import update_center
from keras_siglip2.losses.ring import ring_sigmoid_loss
from keras_siglip2.losses.sigmoid import chunked_sigmoid_loss
from keras_siglip2.losses.sigmoid import sigmoid_loss
from keras_siglip2.losses.sigmoid import sigmoid_loss_block
from keras_siglip2.losses.sigmoid import sigmoid_nll_sum

__all__ = [
    "chunked_cross_entropy",
    "chunked_sigmoid_loss",
    "cross_entropy",
    "distillation_loss",
    "learnability_selection",
    "per_example_sigmoid_loss",
    "ring_sigmoid_loss",
    "sigmoid_loss",
    "sigmoid_loss_block",
    "sigmoid_nll_sum",
    "update_center",
]
