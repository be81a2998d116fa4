"""Self-distillation (SILC) and masked prediction (TIPS): heads, views, teacher.

The paper gives the recipe but not the sizes; our choices and their sources
are listed in `docs/self-supervised.md`. In short:

- `PrototypeHead` (DINO): MLP (GELU) → L2-normalised bottleneck → cosine
  scores against K L2-normalised prototypes.
- The student runs its own image tower on (a) 8 low-resolution local crops and
  (b) the global view with half of the embedded patches replaced by a learned
  mask token. Both reuse the tower's layers directly (no second model), with
  the position table resized to the crop's patch grid.
- The teacher is a frozen copy of the image tower plus both heads, moved
  towards the student by an exponential moving average inside the training
  step (`ema_update`).
"""

import keras
from keras import ops

from keras_siglip2.layers.embeddings import antialiased_bilinear_weights
from keras_siglip2.layers.similarity import l2_normalize


@keras.saving.register_keras_serializable(package="keras_siglip2")
class PrototypeHead(keras.layers.Layer):
    """DINO-style projection head.

    `(..., D)` → Dense(hidden) → GELU → … → Dense(bottleneck) → L2-normalise →
    cosine scores against `num_prototypes` L2-normalised prototype vectors →
    `(..., K)` float32 in [-1, 1].
    """

    def __init__(self, num_prototypes, hidden_dim=2048, bottleneck_dim=256, num_layers=3, **kwargs):
        super().__init__(**kwargs)
        self.num_prototypes = num_prototypes
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_layers = num_layers

    def build(self, input_shape):
        widths = [self.hidden_dim] * (self.num_layers - 1) + [self.bottleneck_dim]
        self.dense_layers = []
        width_in = input_shape[-1]
        for i, width in enumerate(widths):
            layer = keras.layers.Dense(width, dtype=self.dtype_policy, name=f"dense_{i}")
            layer.build((None, width_in))
            self.dense_layers.append(layer)
            width_in = width
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.bottleneck_dim, self.num_prototypes),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def call(self, x):
        for layer in self.dense_layers[:-1]:
            x = keras.activations.gelu(layer(x), approximate=True)
        x = l2_normalize(ops.cast(self.dense_layers[-1](x), "float32"))
        prototypes = l2_normalize(ops.transpose(ops.cast(self.prototypes, "float32")))
        return ops.matmul(x, ops.transpose(prototypes))

    def compute_output_spec(self, x):
        return keras.KerasTensor((*x.shape[:-1], self.num_prototypes), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "num_prototypes": self.num_prototypes,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "num_layers": self.num_layers,
        }


def resize_position_table(table, grid):
    """Square `(G·G, D)` position table → `(grid·grid, D)`, antialiased bilinear
    (the NaFlex resize, here for a square crop of `grid × grid` patches)."""
    size = int(round(int(table.shape[0]) ** 0.5))
    steps = ops.arange(grid, dtype="int32")
    weights_1d = antialiased_bilinear_weights(ops.full((grid,), grid, "int32"), steps, size)
    weights = weights_1d[:, None, :, None] * weights_1d[None, :, None, :]  # (g, g, G, G)
    weights = ops.reshape(weights, (grid * grid, size * size))
    return ops.matmul(weights, ops.cast(table, "float32"))


def embed_global_view(tower, image_inputs, mask_token=None, drop_mask=None):
    """Embedded patches of the training image (the global view), with the
    patches where `drop_mask (B, N)` is True replaced by `mask_token (D,)`.

    Returns `tokens (B, N, D)` and the key mask `(B, N)` (None for fixed-res).
    """
    if tower.naflex:
        tokens = tower.patch_embedding(image_inputs["patches"])
    else:
        tokens = tower.patch_embedding(image_inputs["images"])
    if drop_mask is not None:
        token = ops.cast(mask_token, tokens.dtype)[None, None, :]
        tokens = ops.where(ops.cast(drop_mask, "bool")[..., None], token, tokens)
    if tower.naflex:
        tokens = tower.position_embedding(tokens, image_inputs["spatial_shapes"])
        return tokens, image_inputs["patch_mask"]
    return tower.position_embedding(tokens), None


def embed_local_views(tower, local_images):
    """Local crops `(B, V, r, r, 3)` → embedded patches `(B·V, g², D)`, g = r / P,
    with the tower's position table resized to the g × g grid."""
    batch, views, size = ops.shape(local_images)[0], local_images.shape[1], local_images.shape[2]
    flat = ops.reshape(local_images, (batch * views, size, size, local_images.shape[-1]))
    tokens = tower.patch_embedding(ops.cast(flat, tower.compute_dtype))
    grid = size // tower.patch_size
    positions = resize_position_table(tower.position_embedding.embeddings, grid)
    return tokens + ops.cast(positions, tokens.dtype)[None]


def encode_tokens(tower, tokens, key_mask=None):
    """The tower after its embeddings: blocks → final norm → MAP pooling.
    Returns `pooled (B, D)`, `patch_features (B, N, D)`."""
    for block in tower.encoder_blocks:
        tokens = block(tokens, key_mask=key_mask)
    features = tower.final_norm(tokens)
    return tower.pooling(features, key_mask=key_mask), features


def ema_update(pairs, momentum, active):
    """For each `(teacher, student)` variable pair: `teacher ← m·teacher +
    (1 − m)·student` when `active`, else `teacher ← student` (so the teacher
    starts as the student at switch-on)."""
    active = ops.cast(active, "bool")
    for teacher, student in pairs:
        value = ops.cast(ops.stop_gradient(student), teacher.dtype)
        averaged = momentum * teacher + (1.0 - momentum) * value
        teacher.assign(ops.where(active, averaged, value))


def size_factor(vision_width):
    """The paper's weight factor of losses 4 and 5 by model size (SPEC §3):
    B 0.25, L 0.5, So400m 1.0, g 0.5; 1.0 for other widths."""
    return {768: 0.25, 1024: 0.5, 1152: 1.0, 1536: 0.5}.get(vision_width, 1.0)
