"""Multi-head attention with key padding masks and an optional causal mask."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_siglip2")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention in the big_vision / Keras kernel layout.

    Kernels: query/key/value `(D_in, heads, head_dim)`, output
    `(heads, head_dim, D)`, each with a bias. Scale `1/sqrt(head_dim)`.
    Self-attention projects q, k, v with one matmul (k, v with one for
    cross-attention); attention is the fused `keras.ops.dot_product_attention`.

    Call: `query (B, T, D)`, `key_value (B, S, D_kv)` (defaults to `query`),
    `attention_mask` bool broadcastable to `(B, heads, T, S)` (True = attend; build it
    with `key_padding_mask` / `causal_mask`) → `(B, T, D)`.
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

    def _project(self, x, *names):
        """`x (B, T, D_in)` through the named projections (`"query"`, `"key"`,
        `"value"`) at once: their kernels side by side make one matmul
        `(B·T, D_in) @ (D_in, n·H·hd)`, whose output splits into n `(B, T, H, hd)`."""
        d_in = ops.shape(x)[-1]
        kernels = [ops.reshape(getattr(self, f"{n}_kernel"), (d_in, -1)) for n in names]
        biases = [ops.reshape(getattr(self, f"{n}_bias"), (-1,)) for n in names]
        if len(names) > 1:
            kernels, biases = [ops.concatenate(kernels, axis=1)], [ops.concatenate(biases)]
        flat = ops.matmul(x, kernels[0]) + biases[0]
        shape = (ops.shape(x)[0], -1, len(names), self.num_heads, self.head_dim)
        parts = ops.reshape(flat, shape)
        return [parts[:, :, i] for i in range(len(names))]

    def call(self, query, key_value=None, attention_mask=None):
        if key_value is None:  # self-attention: q, k, v in one matmul
            q, k, v = self._project(query, "query", "key", "value")
        else:
            (q,) = self._project(query, "query")
            k, v = self._project(key_value, "key", "value")
        attended = ops.dot_product_attention(
            q, k, v, mask=attention_mask, scale=1.0 / math.sqrt(self.head_dim)
        )
        attended = ops.reshape(attended, (ops.shape(query)[0], -1, self.num_heads * self.head_dim))
        width = ops.shape(self.output_kernel)[-1]
        out = ops.matmul(attended, ops.reshape(self.output_kernel, (-1, width)))
        return out + self.output_bias

    def compute_output_spec(self, query, key_value=None, attention_mask=None):
        return keras.KerasTensor(query.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


def key_padding_mask(key_mask):
    """`(B, S)` validity → bool mask `(B, 1, 1, S)`, or None when no mask."""
    if key_mask is None:
        return None
    return ops.cast(key_mask, "bool")[:, None, None, :]


def causal_mask(length):
    """Lower-triangular bool mask `(1, 1, T, T)`: position t sees positions ≤ t."""
    rows = ops.arange(length)[:, None]
    cols = ops.arange(length)[None, :]
    return (cols <= rows)[None, None]
