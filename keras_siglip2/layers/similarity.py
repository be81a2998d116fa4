"""The joint head: L2-normalised embeddings and sigmoid logits."""

import math

import keras
from keras import ops

NORM_EPSILON = 1e-8


def l2_normalize(x):
    """`z / (||z|| + 1e-8)` along the last axis."""
    return x / (ops.norm(x, axis=-1, keepdims=True) + NORM_EPSILON)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigmoidLogitHead(keras.layers.Layer):
    """Holds the log temperature `t'` and bias `b`; computes, in float32,
    `logits = norm(img) · norm(txt)ᵀ · exp(t') + b`.

    Call: `image_embedding (B_i, D)`, `text_embedding (B_t, D)` → dict of
    `image_embeddings (B_i, D)`, `text_embeddings (B_t, D)` (normalised) and
    `logits (B_i, B_t)`.
    """

    def __init__(self, initial_temperature=math.log(10.0), initial_bias=-10.0, **kwargs):
        kwargs["dtype"] = "float32"  # the logit scale must never be rounded to bf16
        super().__init__(**kwargs)
        self.initial_temperature = initial_temperature
        self.initial_bias = initial_bias

    def build(self, image_embedding_shape=None, text_embedding_shape=None):
        self.log_temperature = self.add_weight(
            name="log_temperature",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_temperature),
        )
        self.bias = self.add_weight(
            name="bias", shape=(), initializer=keras.initializers.Constant(self.initial_bias)
        )

    def logits(self, image_embeddings, text_embeddings):
        """Normalised `(B_i, D)`, `(B_t, D)` → `(B_i, B_t)` float32 logits."""
        similarity = ops.matmul(
            ops.cast(image_embeddings, "float32"),
            ops.transpose(ops.cast(text_embeddings, "float32")),
        )
        return similarity * ops.exp(self.log_temperature) + self.bias

    def call(self, image_embedding, text_embedding):
        image = l2_normalize(ops.cast(image_embedding, "float32"))
        text = l2_normalize(ops.cast(text_embedding, "float32"))
        return {
            "image_embeddings": image,
            "text_embeddings": text,
            "logits": self.logits(image, text),
        }

    def compute_output_spec(self, image_embedding, text_embedding):
        return {
            "image_embeddings": keras.KerasTensor(image_embedding.shape, "float32"),
            "text_embeddings": keras.KerasTensor(text_embedding.shape, "float32"),
            "logits": keras.KerasTensor(
                (image_embedding.shape[0], text_embedding.shape[0]), "float32"
            ),
        }

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return {
            **config,
            "initial_temperature": self.initial_temperature,
            "initial_bias": self.initial_bias,
        }
