"""Multi-head attention with key padding masks and an optional causal mask."""

import math

import keras
from keras import ops

from keras_siglip2.layers.attention_kernels import dot_product_attention


@keras.saving.register_keras_serializable(package="keras_siglip2")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention in the big_vision / Keras kernel layout.

    Kernels: query/key/value `(D_in, heads, head_dim)`, output
    `(heads, head_dim, D)`, each with a bias. Scale `1/sqrt(head_dim)`.
    The attention kernel (cuDNN flash attention or XLA on JAX) is chosen per
    call by `attention_kernels.choose_kernel`.

    Call: `query (B, T, D)`, `key_value (B, S, D_kv)` (defaults to `query`),
    either `key_mask (B, S)` (True = a real key; real keys come first in each
    row) or `attention_mask`, a 4-D bool mask broadcastable to
    `(B, heads, T, S)` (True = attend; e.g. `causal_mask`) → `(B, T, D)`.
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads

    def build(self, query_shape, key_value_shape=None):
        width = query_shape[-1]
        kv_width = width if key_value_shape is None else key_value_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"Width {width} is not divisible by num_heads={self.num_heads}."
            )
        heads, head_dim = self.num_heads, width // self.num_heads
        self.head_dim = head_dim

        def kernel(name, shape):
            return self.add_weight(name=name, shape=shape, initializer="glorot_uniform")

        def bias(name, shape):
            return self.add_weight(name=name, shape=shape, initializer="zeros")

        self.query_kernel = kernel("query_kernel", (width, heads, head_dim))
        self.query_bias = bias("query_bias", (heads, head_dim))
        self.key_kernel = kernel("key_kernel", (kv_width, heads, head_dim))
        self.key_bias = bias("key_bias", (heads, head_dim))
        self.value_kernel = kernel("value_kernel", (kv_width, heads, head_dim))
        self.value_bias = bias("value_bias", (heads, head_dim))
        self.output_kernel = kernel("output_kernel", (heads, head_dim, width))
        self.output_bias = bias("output_bias", (width,))

    def _project(self, x, kernel, bias):
        # (B, T, D) @ (D, H*hd) -> (B, T, H, hd): one matmul, no einsum transposes.
        d_in = ops.shape(kernel)[0]
        flat = ops.matmul(x, ops.reshape(kernel, (d_in, -1)))
        flat = flat + ops.reshape(bias, (-1,))
        return ops.reshape(flat, (ops.shape(x)[0], -1, self.num_heads, self.head_dim))

    def call(self, query, key_value=None, key_mask=None, attention_mask=None, training=None):
        key_value = query if key_value is None else key_value
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key_value, self.key_kernel, self.key_bias)
        v = self._project(key_value, self.value_kernel, self.value_bias)
        attended = dot_product_attention(
            q, k, v, scale=1.0 / math.sqrt(self.head_dim), key_mask=key_mask,
            mask=attention_mask, training=training,
        )
        attended = ops.reshape(attended, (ops.shape(query)[0], -1, self.num_heads * self.head_dim))
        width = ops.shape(self.output_kernel)[-1]
        out = ops.matmul(attended, ops.reshape(self.output_kernel, (-1, width)))
        return out + self.output_bias

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
