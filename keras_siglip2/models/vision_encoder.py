"""SigLIP 2 image tower: fixed resolution or NaFlex (variable resolution)."""

import keras
from keras import ops
from keras_hub.models import Backbone

from keras_siglip2.layers.embeddings import (
    LearnedPositionEmbedding,
    NaFlexPositionEmbedding,
    PatchEmbedding,
    resize_square_table,
)
from keras_siglip2.layers.pooling import MAPHead
from keras_siglip2.layers.transformer import TransformerEncoderBlock, layer_norm
from keras_siglip2.models.input_checks import ChecksInputs, check_fixed_images, check_naflex_inputs
from keras_siglip2.models.precision import check_compute_dtype


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2VisionEncoder(ChecksInputs, Backbone):
    """Patch embedding → pre-LN transformer → final LayerNorm → MAP pooling.

    Fixed resolution (`image_size` set): input `{"images": (B, R, R, 3)}` in
    [-1, 1]. NaFlex (`image_size=None`): input `{"patches": (B, N, P·P·3),
    "patch_mask": (B, N), "spatial_shapes": (B, 2)}`, any N.

    Outputs: `pooled (B, D)` (the MAP head output, no projection) and
    `patch_features (B, N, D)` (tokens after the final LayerNorm).

    The forward pass is three public steps, which the functional graph and
    the self-supervised training views (`models/self_supervised.py`) share:
    `embed` (or `embed_crops` for square crops of any size) → `encode` →
    `pool`.
    """

    def __init__(
        self,
        patch_size,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        image_size=None,
        position_grid_size=16,
        max_num_patches=256,
        dtype=None,
        **kwargs,
    ):
        check_compute_dtype(dtype)
        naflex = image_size is None
        if naflex:
            inputs = {
                "patches": keras.Input((None, patch_size * patch_size * 3), name="patches"),
                "patch_mask": keras.Input((None,), dtype="bool", name="patch_mask"),
                "spatial_shapes": keras.Input((2,), dtype="int32", name="spatial_shapes"),
            }
        else:
            inputs = {"images": keras.Input((image_size, image_size, 3), name="images")}

        # Variable paths start with the tower's name: both towers have
        # `encoder_block_i`, and the torch backend keys parameters by path. A
        # fixed default (not Keras' unique "sig_lip2_…_1") keeps an unnamed
        # tower's paths the same after a `.keras` reload.
        kwargs.setdefault("name", "vision_encoder")
        with keras.name_scope(kwargs["name"]):
            self.patch_embedding = PatchEmbedding(
                hidden_dim, patch_size, dtype=dtype, name="patch_embedding"
            )
            if naflex:
                self.position_embedding = NaFlexPositionEmbedding(
                    position_grid_size, dtype=dtype, name="position_embedding"
                )
            else:
                self.position_embedding = LearnedPositionEmbedding(
                    (image_size // patch_size) ** 2, dtype=dtype, name="position_embedding"
                )
            self.encoder_blocks = [
                TransformerEncoderBlock(
                    num_heads, intermediate_dim, dtype=dtype, name=f"encoder_block_{i}"
                )
                for i in range(num_layers)
            ]
            self.final_norm = layer_norm("final_norm", dtype)
            self.pooling = MAPHead(num_heads, intermediate_dim, dtype=dtype, name="map_head")

            tokens, key_mask = self.embed(inputs)
            patch_features = self.encode(tokens, key_mask)
            pooled = self.pool(patch_features, key_mask)
        super().__init__(
            inputs=inputs,
            outputs={"pooled": pooled, "patch_features": patch_features},
            dtype=dtype,
            **kwargs,
        )
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.image_size = image_size
        self.position_grid_size = position_grid_size
        self.max_num_patches = max_num_patches

    @property
    def naflex(self):
        return self.image_size is None

    def embed(self, image_inputs, mask_token=None, drop_mask=None):
        """The tower's inputs → `tokens (B, N, D)` (patch + position embedding)
        and the key mask `(B, N)` (NaFlex `patch_mask`; None at fixed
        resolution). Patches where `drop_mask (B, N)` is True are replaced by
        `mask_token (D,)` before the position embedding (masked prediction)."""
        naflex = "patches" in image_inputs
        tokens = self.patch_embedding(image_inputs["patches" if naflex else "images"])
        if drop_mask is not None:
            token = ops.cast(mask_token, tokens.dtype)[None, None, :]
            tokens = ops.where(ops.cast(drop_mask, "bool")[..., None], token, tokens)
        if naflex:
            tokens = self.position_embedding(tokens, image_inputs["spatial_shapes"])
            return tokens, image_inputs["patch_mask"]
        return self.position_embedding(tokens), None

    def embed_crops(self, images):
        """Square crops `(B, r, r, 3)` of any size → `tokens (B, g², D)`,
        g = r / P, with the position table resized to the g × g grid
        (antialiased bilinear, as NaFlex resizes it)."""
        tokens = self.patch_embedding(ops.cast(images, self.compute_dtype))
        grid = images.shape[1] // self.patch_size
        positions = resize_square_table(self.position_embedding.embeddings, grid)
        return tokens + ops.cast(positions, tokens.dtype)[None]

    def encode(self, tokens, key_mask=None, training=None):
        """`tokens (B, N, D)` → the blocks → final LayerNorm → `(B, N, D)`
        patch features."""
        for block in self.encoder_blocks:
            tokens = block(tokens, key_mask=key_mask, training=training)
        return self.final_norm(tokens)

    def pool(self, patch_features, key_mask=None, training=None):
        """`patch_features (B, N, D)` → MAP-pooled `(B, D)`."""
        return self.pooling(patch_features, key_mask=key_mask, training=training)

    def check_inputs(self, inputs):
        """Raise a clear `ValueError` for inputs this tower cannot take."""
        expected = set(self.input.keys()) if isinstance(self.input, dict) else set()
        if not isinstance(inputs, dict) or not expected.issubset(inputs):
            given = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"This {'NaFlex' if self.naflex else 'fixed-resolution'} image tower "
                f"takes a dict with keys {sorted(expected)}; got {given}."
            )
        if self.naflex:
            check_naflex_inputs(
                inputs["patches"],
                inputs["patch_mask"],
                inputs["spatial_shapes"],
                self.patch_size,
            )
        else:
            check_fixed_images(inputs["images"], self.image_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            patch_size=self.patch_size,
            hidden_dim=self.hidden_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            image_size=self.image_size,
        )
        if self.naflex:
            config.update(
                position_grid_size=self.position_grid_size,
                max_num_patches=self.max_num_patches,
            )
        return config
