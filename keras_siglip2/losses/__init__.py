"""Training losses: pure functions of tensors (keras.ops, every backend), no model state."""

from keras_siglip2.losses.captioning import chunked_cross_entropy
from keras_siglip2.losses.captioning import chunked_cross_entropy_sums
from keras_siglip2.losses.captioning import cross_entropy
from keras_siglip2.losses.captioning import cross_entropy_sums
from keras_siglip2.losses.curation import learnability_selection
from keras_siglip2.losses.curation import per_example_sigmoid_loss
from keras_siglip2.losses.distillation import distillation_loss
from keras_siglip2.losses.distillation import update_center
from keras_siglip2.losses.global_batch import SIGMOID_LOSSES
from keras_siglip2.losses.global_batch import global_sigmoid_loss
from keras_siglip2.losses.global_batch import replica_sigmoid_loss
from keras_siglip2.losses.global_batch import resolve_sigmoid_loss
from keras_siglip2.losses.global_batch import scale_loss_for_replicas
from keras_siglip2.losses.ring import ring_sigmoid_loss
from keras_siglip2.losses.sigmoid import chunked_sigmoid_loss
from keras_siglip2.losses.sigmoid import sigmoid_loss
from keras_siglip2.losses.sigmoid import sigmoid_loss_block
from keras_siglip2.losses.sigmoid import sigmoid_nll_sum

__all__ = [
    "SIGMOID_LOSSES",
    "chunked_cross_entropy",
    "chunked_cross_entropy_sums",
    "chunked_sigmoid_loss",
    "cross_entropy",
    "cross_entropy_sums",
    "distillation_loss",
    "global_sigmoid_loss",
    "learnability_selection",
    "per_example_sigmoid_loss",
    "replica_sigmoid_loss",
    "resolve_sigmoid_loss",
    "ring_sigmoid_loss",
    "scale_loss_for_replicas",
    "sigmoid_loss",
    "sigmoid_loss_block",
    "sigmoid_nll_sum",
    "update_center",
]
