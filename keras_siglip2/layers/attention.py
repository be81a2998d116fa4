"""Multi-head attention with key padding masks and an optional causal mask."""

import math

import keras
from keras import ops

from keras_siglip2.layers.attention_kernels import dot_product_attention
from keras_siglip2.layers.projections import EinsumDense
from keras_siglip2.layers.sublayers import call_sublayer


@keras.saving.register_keras_serializable(package="keras_siglip2")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention in the big_vision / Keras kernel layout.

    Four `EinsumDense` projections, so LoRA (`enable_lora`) and quantization
    (`quantize`) reach them as they reach any Keras layer: `query`, `key`,
    `value` with kernels `(D_in, heads, head_dim)` and biases `(heads,
    head_dim)`, and `attention_output` with kernel `(heads, head_dim, D)` and
    bias `(D,)`. Scale `1/sqrt(head_dim)`. The attention kernel (cuDNN flash
    attention or XLA on JAX) is chosen per call by
    `attention_kernels.choose_kernel`.

    Call: `query (B, T, D)`, `key_value (B, S, D_kv)` (defaults to `query`),
    either `key_mask (B, S)` (True = a real key; real keys come first in each
    row) or `attention_mask`, a 4-D bool mask broadcastable to
    `(B, heads, T, S)` (True = attend; e.g. `causal_mask`) → `(B, T, D)`.
    """

    PROJECTIONS = ("query", "key", "value", "attention_output")

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads

    def build(self, query_shape, key_value_shape=None):
        width = query_shape[-1]
        key_value_shape = query_shape if key_value_shape is None else key_value_shape
        if width % self.num_heads:
            raise ValueError(
                f"Width {width} is not divisible by num_heads={self.num_heads}."
            )
        heads, head_dim = self.num_heads, width // self.num_heads
        self.head_dim = head_dim

        def projection(name, equation, output_shape, bias_axes):
            return EinsumDense(
                equation, output_shape=output_shape, bias_axes=bias_axes,
                kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name=name,
            )

        self.query = projection("query", "btd,dnh->btnh", (None, heads, head_dim), "nh")
        self.key = projection("key", "bsd,dnh->bsnh", (None, heads, head_dim), "nh")
        self.value = projection("value", "bsd,dnh->bsnh", (None, heads, head_dim), "nh")
        self.attention_output = projection(
            "attention_output", "btnh,nhd->btd", (None, width), "d"
        )
        self.query.build(query_shape)
        self.key.build(key_value_shape)
        self.value.build(key_value_shape)
        self.attention_output.build((None, None, heads, head_dim))

    def call(self, query, key_value=None, key_mask=None, attention_mask=None, training=None):
        key_value = query if key_value is None else key_value
        attended = dot_product_attention(
            call_sublayer(self.query, query), call_sublayer(self.key, key_value),
            call_sublayer(self.value, key_value),
            scale=1.0 / math.sqrt(self.head_dim), key_mask=key_mask, mask=attention_mask,
            training=training,
        )
        return call_sublayer(self.attention_output, attended)

    def compute_output_spec(self, query, key_value=None, key_mask=None, attention_mask=None,
                            training=None):
        return keras.KerasTensor(query.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


def causal_mask(length):
    """Lower-triangular bool mask `(1, 1, T, T)`: position t sees positions ≤ t."""
    rows = ops.arange(length)[:, None]
    cols = ops.arange(length)[None, :]
    return (cols <= rows)[None, None]
