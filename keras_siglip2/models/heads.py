"""Training heads: the LocCa decoder (captioning and localisation)."""

import math

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

    With `memory_positions=True` (default) every image token is told where it
    lies in the image: a learned projection of Fourier features of its patch
    centre `(y, x)` in [0, 1] (the box coordinate frame) is added to it before
    cross-attention. The towers' own position embedding is added at their
    input only, and the contrastive loss lets the final tokens forget it;
    without this, a small model trained briefly cannot read boxes off them
    (docs/design-notes.md).

    Call: `token_ids (B, T)`, or `(B, K, T)` for K sequences per image (the
    three training tasks share one image, whose keys and values are then
    projected once per decoder layer, not K times), `image_tokens (B, N,
    D_img)`, `image_mask (B, N)` or None, `task_ids` and `parallel` (bool)
    shaped like `token_ids` without T, `image_positions (B, N, 2)` patch
    centres (`patch_centres`) → hidden `token_ids.shape + (D,)`.
    `logits(hidden)` gives `(…, vocabulary)` logits; training uses the
    chunked cross entropy on the tied `token_embeddings` instead.
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
        memory_positions=True,
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
        self.memory_positions = memory_positions
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
            initializer=self._initial_token_table,
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
        if self.memory_positions:
            features = 4 * POSITION_FREQUENCIES
            self.memory_position_kernel = self.add_weight(
                name="memory_position_kernel", shape=(features, image_tokens_shape[-1]),
                initializer=keras.initializers.RandomNormal(stddev=features**-0.5),
            )
        shape = (None, self.sequence_length, self.hidden_dim)
        for block in self.blocks:
            block.build(shape, image_tokens_shape)
        self.final_norm.build(shape)

    def _initial_token_table(self, shape, dtype=None):
        """Text rows: normal with stddev `D^-1/2`. Coordinate rows (input
        embedding and, tied, output projection): random rows smoothed along
        the bin axis with a Gaussian of `COORDINATE_SMOOTHING` of the image
        side (at least one bin), rescaled to the text rows' size. Near bins
        start with near embeddings (correlation `exp(-d²/4σ²)` at d bins), so
        what the decoder learns about one bin carries over to its neighbours;
        far bins stay uncorrelated."""
        width = shape[-1]
        text = keras.random.normal((self.text_vocabulary_size, width), stddev=width**-0.5)
        bins = self.num_coordinate_bins
        sigma = max(1.0, COORDINATE_SMOOTHING * bins)
        index = ops.arange(bins, dtype="float32")
        kernel = ops.exp(-ops.square(index[:, None] - index[None, :]) / (2 * sigma**2))
        rows = ops.matmul(kernel, keras.random.normal((bins, width)))
        rows = rows / ops.sqrt(ops.mean(ops.square(rows), axis=-1, keepdims=True))
        return ops.cast(ops.concatenate([text, rows * width**-0.5], axis=0), dtype)

    def call(self, token_ids, image_tokens, image_mask=None, task_ids=None, parallel=None,
             image_positions=None, training=None):
        if self.memory_positions:
            if image_positions is None:
                raise ValueError(
                    "This LocCa decoder adds patch positions to the image tokens: pass "
                    "`image_positions` (B, N, 2) from `patch_centres`."
                )
            features = fourier_features(image_positions, POSITION_FREQUENCIES)
            image_tokens = image_tokens + ops.cast(
                ops.matmul(features, self.memory_position_kernel), image_tokens.dtype
            )
        length = token_ids.shape[-1]
        x = ops.take(self.token_embeddings, ops.cast(token_ids, "int32"), axis=0)
        self_mask = causal_mask(length)
        if parallel is not None:
            parallel = ops.cast(parallel, "bool")
            x = ops.where(parallel[..., None, None], ops.cast(self.mask_embedding, x.dtype), x)
            every_sequence = ops.reshape(parallel, (-1, 1, 1, 1))
            self_mask = ops.logical_or(self_mask, every_sequence)  # (B·K, 1, T, T)
        x = x + self.position_embeddings[:length]
        if task_ids is not None:
            task = ops.take(self.task_embeddings, ops.cast(task_ids, "int32"), axis=0)
            x = x + task[..., None, :]
        x = ops.cast(x, self.compute_dtype)
        for block in self.blocks:
            x = block(x, image_tokens, memory_mask=image_mask, self_attention_mask=self_mask,
                      training=training)
        return self.final_norm(x)

    def logits(self, hidden):
        """`(…, D)` → `(…, vocabulary)` float32 logits (for decoding, not training)."""
        table = ops.cast(self.token_embeddings, "float32")  # tied output projection
        return ops.einsum("...d,vd->...v", ops.cast(hidden, "float32"), table) + self.output_bias

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
            "memory_positions": self.memory_positions,
        }


POSITION_FREQUENCIES = 8  # 2^0 … 2^7 half-periods per image side
COORDINATE_SMOOTHING = 0.03  # σ of the coordinate rows' initial smoothing, in image sides


def fourier_features(positions, num_frequencies):
    """`(..., C)` coordinates in [0, 1] → `(..., 2·C·F)` float32 `sin` and
    `cos` of `π·2^f·c` for each coordinate c and f < F."""
    scales = math.pi * 2.0 ** ops.arange(num_frequencies, dtype="float32")
    angles = ops.cast(positions, "float32")[..., :, None] * scales  # (..., C, F)
    angles = ops.reshape(angles, (*ops.shape(angles)[:-2], -1))
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def patch_centres(num_patches, grid_shapes):
    """Centre `(y, x)` in [0, 1] of each of `num_patches` row-major patch tokens.

    `grid_shapes (B, 2)` int rows and columns per image (NaFlex
    `spatial_shapes`, or the fixed grid repeated) → `(B, num_patches, 2)`
    float32; padding tokens past `rows·cols` get values above 1 (they are
    masked out of attention).
    """
    grid = ops.cast(grid_shapes, "float32")
    rows, cols = grid[:, :1], grid[:, 1:]  # (B, 1)
    index = ops.cast(ops.arange(num_patches), "float32")[None, :]
    row = ops.floor(index / cols)
    col = index - row * cols
    return ops.stack([(row + 0.5) / rows, (col + 0.5) / cols], axis=-1)
