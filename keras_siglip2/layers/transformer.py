"""Pre-LayerNorm transformer blocks: encoder block, decoder block, MLP.

Both blocks can rematerialise in training (`remat`, set by `set_remat`):
"mlp" keeps only the MLP's input and recomputes its hidden layer in the
backward pass (the hidden layer is 8 of the ~16 values per token and width
a block stores, and costs one extra `D×4D` matmul); "block" keeps only the
block's input and recomputes the whole block. None stores everything.
"""

import keras
from keras import ops

from keras_siglip2.layers.attention import MultiHeadAttention
from keras_siglip2.layers.projections import Dense
from keras_siglip2.layers.sublayers import call_sublayer

LAYER_NORM_EPSILON = 1e-6
REMAT_MODES = (None, "mlp", "block")


def check_remat(mode):
    """`mode` if it is one of `REMAT_MODES`, else a `ValueError`."""
    if mode not in REMAT_MODES:
        raise ValueError(f"`remat` must be one of {REMAT_MODES}; got {mode!r}.")
    return mode


class RematerialisedBlock(keras.layers.Layer):
    """Base of the blocks: `remat` (None, "mlp" or "block"), and the MLP step
    `x + MLP(LN(x))` with the "mlp" rematerialisation."""

    def __init__(self, num_heads, intermediate_dim, remat=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.remat = check_remat(remat)

    def mlp_residual(self, x):
        """`x + MLP(LN(x))` for `(..., D)`."""
        if self.remat == "mlp":
            # A lambda, not the layer itself: JAX does not differentiate the
            # weights of a Keras layer handed to `jax.checkpoint` directly.
            return x + keras.remat(lambda normed: call_sublayer(self.mlp, normed))(
                call_sublayer(self.mlp_norm, x)
            )
        return x + call_sublayer(self.mlp, call_sublayer(self.mlp_norm, x))

    def rematerialised(self, forward, *tensors):
        """`forward(*tensors)`, recomputed in the backward pass when `remat ==
        "block"`. Only floating tensors become arguments of the recomputed
        function; masks and None are captured (TF's `recompute_grad`
        differentiates every argument, and bool tensors have no gradient)."""
        if self.remat != "block":
            return forward(*tensors)
        floating = [
            i for i, t in enumerate(tensors)
            if t is not None and "float" in keras.backend.standardize_dtype(t.dtype)
        ]

        def call(*given):
            arguments = list(tensors)
            for index, tensor in zip(floating, given):
                arguments[index] = tensor
            return forward(*arguments)

        return keras.remat(call)(*[tensors[i] for i in floating])

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "remat": self.remat,
        }


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
        self.fc1 = Dense(
            self.intermediate_dim, dtype=self.dtype_policy, name="fc1"
        )
        self.fc2 = Dense(input_shape[-1], dtype=self.dtype_policy, name="fc2")
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.intermediate_dim))

    def call(self, x):
        hidden = keras.activations.gelu(call_sublayer(self.fc1, x), approximate=True)
        return call_sublayer(self.fc2, hidden)

    def get_config(self):
        return {**super().get_config(), "intermediate_dim": self.intermediate_dim}


@keras.saving.register_keras_serializable(package="keras_siglip2")
class TransformerEncoderBlock(RematerialisedBlock):
    """`x += Attn(LN(x)); x += MLP(LN(x))`. Call: `x (B, T, D)`, `key_mask (B, T)`
    (real tokens first) → `(B, T, D)`."""

    def build(self, x_shape, key_mask_shape=None):
        policy = self.dtype_policy
        self.attention_norm = layer_norm("attention_norm", policy)
        self.attention = MultiHeadAttention(self.num_heads, dtype=policy, name="attention")
        self.mlp_norm = layer_norm("mlp_norm", policy)
        self.mlp = MLP(self.intermediate_dim, dtype=policy, name="mlp")
        for layer in (self.attention_norm, self.mlp_norm, self.mlp):
            layer.build(x_shape)
        self.attention.build(x_shape)

    def call(self, x, key_mask=None, training=None):
        def forward(x, key_mask):
            attended = call_sublayer(
                self.attention, call_sublayer(self.attention_norm, x), key_mask=key_mask,
                training=training,
            )
            return self.mlp_residual(x + attended)

        return self.rematerialised(forward, x, key_mask)

    def compute_output_spec(self, x, key_mask=None, training=None):
        return keras.KerasTensor(x.shape, dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class TransformerDecoderBlock(RematerialisedBlock):
    """Self-attention (causal or not), cross-attention to memory, MLP; pre-LN.

    Several sequences may share one memory: call with `x (B, K, T, D)` (K
    sequences per memory row; `(B, T, D)` is K = 1), `memory (B, S, D_mem)`,
    `memory_mask (B, S)` valid memory tokens (first in each row),
    `self_attention_mask` bool broadcastable to `(B·K, 1, T, T)` (causal for
    autoregressive sequences, all-True for parallel prediction) → the shape
    of `x`. The K sequences attend to each other's memory through one
    cross-attention call with `K·T` queries, so the memory's keys and values
    are projected once per row, not once per sequence.
    """

    def build(self, x_shape, memory_shape=None, memory_mask_shape=None,
              self_attention_mask_shape=None):
        policy = self.dtype_policy
        token_shape = (None, x_shape[-2], x_shape[-1])
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
            layer.build(token_shape)
        self.self_attention.build(token_shape)
        self.cross_attention.build(token_shape, memory_shape)

    def call(self, x, memory, memory_mask=None, self_attention_mask=None, training=None):
        shape = ops.shape(x)
        length, width = x.shape[-2], x.shape[-1]
        per_memory = 1 if len(x.shape) == 3 else x.shape[1]

        def forward(x, memory, memory_mask, self_attention_mask):
            sequences = ops.reshape(x, (-1, length, width))  # (B·K, T, D)
            sequences = sequences + call_sublayer(
                self.self_attention, call_sublayer(self.self_attention_norm, sequences),
                attention_mask=self_attention_mask, training=training,
            )
            rows = ops.reshape(sequences, (-1, per_memory * length, width))  # (B, K·T, D)
            rows = rows + call_sublayer(
                self.cross_attention, call_sublayer(self.cross_attention_norm, rows), memory,
                key_mask=memory_mask, training=training,
            )
            return ops.reshape(self.mlp_residual(rows), shape)

        return self.rematerialised(forward, x, memory, memory_mask, self_attention_mask)
