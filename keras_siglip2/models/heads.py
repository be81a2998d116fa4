"""Training heads: the LocCa decoder (captioning and localisation)."""

import keras
from keras import ops

from keras_siglip2.layers.attention import causal_mask
from keras_siglip2.layers.transformer import TransformerDecoderBlock, layer_norm


@keras.saving.register_keras_serializable(package="keras_siglip2")
class LocCaDecoder(keras.layers.Layer):
    """Transformer decoder over the un-pooled image tokens (SPEC §3, LocCa).

    Vocabulary = the text vocabulary plus `num_coordinate_bins` box-coordinate
    tokens (ids `text_vocabulary_size …`, see `preprocessing.boxes`). A learned
    task embedding (captioning, referring expression, grounded captioning) is
    added at every position. For parallel prediction the inputs are replaced
    by a learned mask embedding and self-attention is not causal.
    The output projection is tied to the input token embedding.

    Call: `token_ids (B, T)`, `image_tokens (B, N, D_img)`, `image_mask (B, N)`
    or None, `task_ids (B,)` int, `parallel (B,)` bool → hidden `(B, T, D)`.
    `logits(hidden)` gives `(…, vocabulary)` logits; training uses the
    chunked cross entropy on `output_kernel` instead.
    """

    TASKS = ("captioning", "referring", "grounded")

    def __init__(
        self,
        text_vocabulary_size,
        sequence_length,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        num_coordinate_bins=1000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.text_vocabulary_size = text_vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.num_coordinate_bins = num_coordinate_bins
        self.vocabulary_size = text_vocabulary_size + num_coordinate_bins
        self.blocks = [
            TransformerDecoderBlock(
                num_heads, intermediate_dim, dtype=self.dtype_policy, name=f"decoder_block_{i}"
            )
            for i in range(num_layers)
        ]
        self.final_norm = layer_norm("final_norm", self.dtype_policy)

    def build(self, token_ids_shape, image_tokens_shape, image_mask_shape=None,
              task_ids_shape=None, parallel_shape=None):
        scale = keras.initializers.RandomNormal(stddev=self.hidden_dim**-0.5)
        self.token_embeddings = self.add_weight(
            name="token_embeddings", shape=(self.vocabulary_size, self.hidden_dim),
            initializer=scale,
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.sequence_length, self.hidden_dim),
            initializer=scale,
        )
        self.task_embeddings = self.add_weight(
            name="task_embeddings", shape=(len(self.TASKS), self.hidden_dim), initializer=scale
        )
        self.mask_embedding = self.add_weight(
            name="mask_embedding", shape=(self.hidden_dim,), initializer=scale
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.vocabulary_size,), initializer="zeros"
        )
        shape = (None, self.sequence_length, self.hidden_dim)
        for block in self.blocks:
            block.build(shape, image_tokens_shape)
        self.final_norm.build(shape)

    @property
    def output_kernel(self):
        """`(D, vocabulary)` projection, tied to the token embedding."""
        return ops.transpose(self.token_embeddings)

    def call(self, token_ids, image_tokens, image_mask=None, task_ids=None, parallel=None):
        length = ops.shape(token_ids)[1]
        x = ops.take(self.token_embeddings, ops.cast(token_ids, "int32"), axis=0)
        self_mask = causal_mask(length)
        if parallel is not None:
            parallel = ops.cast(parallel, "bool")
            x = ops.where(parallel[:, None, None], ops.cast(self.mask_embedding, x.dtype), x)
            self_mask = ops.logical_or(self_mask, parallel[:, None, None, None])
        x = x + self.position_embeddings[None, :length]
        if task_ids is not None:
            x = x + ops.take(self.task_embeddings, ops.cast(task_ids, "int32"), axis=0)[:, None]
        x = ops.cast(x, self.compute_dtype)
        for block in self.blocks:
            x = block(x, image_tokens, memory_mask=image_mask, self_attention_mask=self_mask)
        return self.final_norm(x)

    def logits(self, hidden):
        """`(…, D)` → `(…, vocabulary)` float32 logits (for decoding, not training)."""
        kernel = ops.cast(self.output_kernel, "float32")
        return ops.matmul(ops.cast(hidden, "float32"), kernel) + self.output_bias

    def get_config(self):
        return {
            **super().get_config(),
            "text_vocabulary_size": self.text_vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "num_coordinate_bins": self.num_coordinate_bins,
        }
