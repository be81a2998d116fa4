"""Patch, position and token embeddings, including the NaFlex position resize."""

import keras
import numpy as np
from keras import ops

from keras_siglip2.layers.projections import project


def patchify(images, patch_size):
    """`(B, H, W, C)` → `(B, ⌊H/P⌋·⌊W/P⌋, P·P·C)`, patches row-major, each
    flattened (py, px, c). A remainder of fewer than P pixels is dropped, as by
    a stride-P "valid" convolution (So400m/14 at 384 sees 27×27 patches)."""
    batch, height, width, channels = ops.shape(images)
    rows, cols = height // patch_size, width // patch_size
    if height != rows * patch_size or width != cols * patch_size:
        images = images[:, : rows * patch_size, : cols * patch_size]
    x = ops.reshape(images, (batch, rows, patch_size, cols, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (batch, rows * cols, patch_size * patch_size * channels))


@keras.saving.register_keras_serializable(package="keras_siglip2")
class PatchEmbedding(keras.layers.Layer):
    """Linear patch embedding: kernel `(P·P·3, D)` + bias, the flattened form of
    the conv kernel `(P, P, 3, D)` with kernel = stride = P.

    Call: images `(B, H, W, 3)` or already-cut patches `(B, N, P·P·3)` → `(B, N, D)`.
    """

    def __init__(self, hidden_dim, patch_size, num_channels=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.num_channels = num_channels

    def build(self, input_shape):
        patch_values = self.patch_size * self.patch_size * self.num_channels
        self.kernel = self.add_weight(
            name="kernel",
            shape=(patch_values, self.hidden_dim),
            initializer="lecun_normal",
        )
        self.bias = self.add_weight(name="bias", shape=(self.hidden_dim,), initializer="zeros")

    def call(self, inputs):
        if len(inputs.shape) == 4:
            inputs = patchify(inputs, self.patch_size)
        return project(inputs, self.kernel, self.bias)

    def compute_output_spec(self, inputs):
        if len(inputs.shape) == 4:
            num_patches = None
            if inputs.shape[1] is not None and inputs.shape[2] is not None:
                num_patches = (inputs.shape[1] // self.patch_size) * (
                    inputs.shape[2] // self.patch_size
                )
            shape = (inputs.shape[0], num_patches, self.hidden_dim)
        else:
            shape = (*inputs.shape[:-1], self.hidden_dim)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "patch_size": self.patch_size,
            "num_channels": self.num_channels,
        }


@keras.saving.register_keras_serializable(package="keras_siglip2")
class LearnedPositionEmbedding(keras.layers.Layer):
    """Adds a learned `(num_positions, D)` table to `(B, num_positions, D)`."""

    def __init__(self, num_positions, **kwargs):
        super().__init__(**kwargs)
        self.num_positions = num_positions

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_positions, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=input_shape[-1] ** -0.5),
        )

    def call(self, x):
        return x + self.embeddings[None]

    def get_config(self):
        return {**super().get_config(), "num_positions": self.num_positions}


def antialiased_bilinear_weights(output_size, output_index, input_size):
    """Interpolation weights of a 1-D antialiased bilinear resize.

    Half-pixel centres; when shrinking, the triangle filter is stretched by the
    scale factor (antialiasing), as in PyTorch's `interpolate(antialias=True)`
    and `jax.image.resize(antialias=True)`.

    Args:
      output_size: `(...)` int tensor, target length of each resize (≥ 1).
      output_index: `(...)` int tensor, the output sample to compute.
      input_size: Python int, source length.
    Returns: `(..., input_size)` float32 weights summing to 1.
    """
    output_size = ops.cast(ops.maximum(output_size, 1), "float32")
    scale = input_size / output_size
    support = ops.maximum(scale, 1.0)
    centre = scale * (ops.cast(output_index, "float32") + 0.5)
    source = ops.arange(input_size, dtype="float32") + 0.5
    distance = (source - centre[..., None]) / support[..., None]
    weights = ops.relu(1.0 - ops.abs(distance))
    return weights / ops.sum(weights, axis=-1, keepdims=True)


def resize_square_table(table, grid):
    """Square `(G·G, D)` position table → `(grid·grid, D)` float32, resized with
    antialiased bilinear interpolation (the NaFlex resize, for a square grid)."""
    size = int(round(int(table.shape[0]) ** 0.5))
    steps = ops.arange(grid, dtype="int32")
    weights_1d = antialiased_bilinear_weights(ops.full((grid,), grid, "int32"), steps, size)
    weights = weights_1d[:, None, :, None] * weights_1d[None, :, None, :]  # (g, g, G, G)
    weights = ops.reshape(weights, (grid * grid, size * size))
    return ops.matmul(weights, ops.cast(table, "float32"))


@keras.saving.register_keras_serializable(package="keras_siglip2")
class NaFlexPositionEmbedding(keras.layers.Layer):
    """NaFlex position embedding: a learned `(G·G, D)` grid (row-major), resized
    per image to its patch grid `(h, w)` with antialiased bilinear
    interpolation, laid out row-major over the image's patches.

    Vectorised over the batch: each output patch's value is a weighted sum of
    the grid entries, with separable weights `wy (B, N, G)` ⊗ `wx (B, N, G)`,
    so images with different `(h, w)` share one jit-compiled graph. Padding
    patches (index ≥ h·w) receive the `(0, 0)` entry of their image's resized grid.

    Call: `embeddings (B, N, D)`, `spatial_shapes (B, 2)` int `(h, w)` → `(B, N, D)`.
    """

    def __init__(self, grid_size=16, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = grid_size

    def build(self, embeddings_shape, spatial_shapes_shape=None):
        width = embeddings_shape[-1]
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.grid_size * self.grid_size, width),
            initializer=keras.initializers.RandomNormal(stddev=width**-0.5),
        )

    def resized_positions(self, spatial_shapes, num_patches):
        """`(B, 2)` grids → `(B, N, D)` resized position embeddings."""
        spatial_shapes = ops.cast(spatial_shapes, "int32")
        rows, cols = spatial_shapes[:, :1], spatial_shapes[:, 1:]
        index = ops.arange(num_patches, dtype="int32")[None, :]
        valid = index < rows * cols
        safe_cols = ops.maximum(cols, 1)
        row_index = ops.where(valid, index // safe_cols, 0)
        col_index = ops.where(valid, index % safe_cols, 0)
        wy = antialiased_bilinear_weights(rows, row_index, self.grid_size)
        wx = antialiased_bilinear_weights(cols, col_index, self.grid_size)
        weights = wy[..., :, None] * wx[..., None, :]  # (B, N, G, G)
        weights = ops.reshape(weights, (-1, num_patches, self.grid_size**2))
        table = ops.cast(self.embeddings, "float32")
        return ops.cast(ops.matmul(weights, table), self.compute_dtype)

    def call(self, embeddings, spatial_shapes):
        return embeddings + self.resized_positions(spatial_shapes, ops.shape(embeddings)[1])

    def compute_output_spec(self, embeddings, spatial_shapes):
        return keras.KerasTensor(embeddings.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size}


def extend_text_positions(table, length):
    """Learned text positions `(L0, D)` → `(length, D)`, `length ≥ L0`.

    The text tower pools its last position, so the last learned row moves to
    the new last position; the first `L0 − 1` rows stay where they are (a
    short text sees the positions it was trained with), and the new rows in
    between interpolate linearly from row `L0 − 2` to row `L0 − 1`.
    """
    table = np.asarray(table)
    old = table.shape[0]
    if length < old:
        raise ValueError(
            f"The text tower was trained with {old} positions; it can be extended, "
            f"not cut to {length}."
        )
    if length == old or old < 2:
        return np.concatenate([table, np.repeat(table[-1:], length - old, axis=0)])
    first, last = table[old - 2], table[old - 1]
    steps = np.arange(1, length - old + 2, dtype=table.dtype)[:, None] / (length - old + 1)
    tail = first + (last - first) * steps  # rows L0−1 … length−1, ending at `last`
    return np.concatenate([table[: old - 1], tail]).astype(table.dtype)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class TextEmbedding(keras.layers.Layer):
    """Token embedding `(V, D)` plus learned position embedding `(L, D)`.

    Call: `token_ids (B, L)` int → `(B, L, D)`.
    """

    def __init__(self, vocabulary_size, sequence_length, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim

    def build(self, input_shape):
        self.token_embeddings = self.add_weight(
            name="token_embeddings",
            shape=(self.vocabulary_size, self.hidden_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.hidden_dim**-0.5),
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.sequence_length, self.hidden_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.hidden_dim**-0.5),
        )

    def call(self, token_ids):
        tokens = ops.take(self.token_embeddings, ops.cast(token_ids, "int32"), axis=0)
        length = ops.shape(token_ids)[1]
        return tokens + self.position_embeddings[None, :length]

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor((*token_ids.shape, self.hidden_dim), dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
        }
