"""Pre-LayerNorm transformer blocks: encoder block, decoder block, MLP."""

import keras

from keras_siglip2.layers.attention import MultiHeadAttention, key_padding_mask

LAYER_NORM_EPSILON = 1e-6


def layer_norm(name, dtype=None):
    """The LayerNorm used everywhere in SigLIP (epsilon 1e-6)."""
    return keras.layers.LayerNormalization(
        epsilon=LAYER_NORM_EPSILON, dtype=dtype, name=name
    )


@keras.saving.register_keras_serializable(package="keras_siglip2")
class MLP(keras.layers.Layer):
    """Dense(intermediate) → tanh-GELU → Dense(width). `(B, T, D) → (B, T, D)`."""

    def __init__(self, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim

    def build(self, input_shape):
        self.fc1 = keras.layers.Dense(
            self.intermediate_dim, dtype=self.dtype_policy, name="fc1"
        )
        self.fc2 = keras.layers.Dense(input_shape[-1], dtype=self.dtype_policy, name="fc2")
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.intermediate_dim))

    def call(self, x):
        return self.fc2(keras.activations.gelu(self.fc1(x), approximate=True))

    def get_config(self):
        return {**super().get_config(), "intermediate_dim": self.intermediate_dim}


@keras.saving.register_keras_serializable(package="keras_siglip2")
class TransformerEncoderBlock(keras.layers.Layer):
    """`x += Attn(LN(x)); x += MLP(LN(x))`. Call: `x (B, T, D)`, `key_mask (B, T)`."""

    def __init__(self, num_heads, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim

    def build(self, x_shape, key_mask_shape=None):
        input_shape = x_shape
        policy = self.dtype_policy
        self.attention_norm = layer_norm("attention_norm", policy)
        self.attention = MultiHeadAttention(self.num_heads, dtype=policy, name="attention")
        self.mlp_norm = layer_norm("mlp_norm", policy)
        self.mlp = MLP(self.intermediate_dim, dtype=policy, name="mlp")
        for layer in (self.attention_norm, self.mlp_norm, self.mlp):
            layer.build(input_shape)
        self.attention.build(input_shape)

    def call(self, x, key_mask=None):
        mask = key_padding_mask(key_mask)
        x = x + self.attention(self.attention_norm(x), attention_mask=mask)
        return x + self.mlp(self.mlp_norm(x))

    def compute_output_spec(self, x, key_mask=None):
        return keras.KerasTensor(x.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
        }


@keras.saving.register_keras_serializable(package="keras_siglip2")
class TransformerDecoderBlock(keras.layers.Layer):
    """Self-attention (causal or not), cross-attention to memory, MLP; pre-LN.

    Call: `x (B, T, D)`, `memory (B, S, D_mem)`, `memory_mask (B, S)` valid
    memory tokens, `self_attention_mask` bool broadcastable to `(B, 1, T, T)`
    (causal for autoregressive examples, all-True for parallel prediction)
    → `(B, T, D)`.
    """

    def __init__(self, num_heads, intermediate_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim

    def build(self, x_shape, memory_shape=None, memory_mask_shape=None, self_attention_mask_shape=None):
        input_shape = x_shape
        policy = self.dtype_policy

        self.self_attention_norm = layer_norm("self_attention_norm", policy)
        self.self_attention = MultiHeadAttention(
            self.num_heads, dtype=policy, name="self_attention"
        )
        self.cross_attention_norm = layer_norm("cross_attention_norm", policy)
        self.cross_attention = MultiHeadAttention(
            self.num_heads, dtype=policy, name="cross_attention"
        )
        self.mlp_norm = layer_norm("mlp_norm", policy)
        self.mlp = MLP(self.intermediate_dim, dtype=policy, name="mlp")
        for layer in (
            self.self_attention_norm,
            self.cross_attention_norm,
            self.mlp_norm,
            self.mlp,
        ):
            layer.build(input_shape)
        self.self_attention.build(input_shape)
        self.cross_attention.build(input_shape, memory_shape)

    def call(self, x, memory, memory_mask=None, self_attention_mask=None):
        x = x + self.self_attention(
            self.self_attention_norm(x), attention_mask=self_attention_mask
        )
        x = x + self.cross_attention(
            self.cross_attention_norm(x), memory, attention_mask=key_padding_mask(memory_mask)
        )
        return x + self.mlp(self.mlp_norm(x))

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
        }
