"""Multihead attention pooling (MAP head) with key masking."""

import keras
from keras import ops

from keras_siglip2.layers.attention import MultiHeadAttention
from keras_siglip2.layers.sublayers import call_sublayer
from keras_siglip2.layers.transformer import MLP, layer_norm


@keras.saving.register_keras_serializable(package="keras_siglip2")
class MAPHead(keras.layers.Layer):
    """A learned probe attends over all tokens, then `x += MLP(LN(x))`.

    Call: `tokens (B, N, D)`, `key_mask (B, N)` (True = real token; real
    tokens first) → `(B, D)`.
    """

    def __init__(self, num_heads, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim

    def build(self, tokens_shape, key_mask_shape=None):
        width = tokens_shape[-1]
        self.probe = self.add_weight(
            name="probe", shape=(1, 1, width), initializer="glorot_uniform"
        )
        self.attention = MultiHeadAttention(
            self.num_heads, dtype=self.dtype_policy, name="attention"
        )
        self.attention.build((None, 1, width), tokens_shape)
        self.norm = layer_norm("norm", self.dtype_policy)
        self.norm.build((None, 1, width))
        self.mlp = MLP(self.intermediate_dim, dtype=self.dtype_policy, name="mlp")
        self.mlp.build((None, 1, width))

    def call(self, tokens, key_mask=None, training=None):
        probe = ops.broadcast_to(
            ops.cast(self.probe, tokens.dtype), (ops.shape(tokens)[0], 1, ops.shape(tokens)[2])
        )
        x = call_sublayer(self.attention, probe, tokens, key_mask=key_mask, training=training)
        x = x + call_sublayer(self.mlp, call_sublayer(self.norm, x))
        return x[:, 0]

    def compute_output_spec(self, tokens, key_mask=None, training=None):
        return keras.KerasTensor((tokens.shape[0], tokens.shape[-1]), dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
        }
