"""SigLIP 2 image tower: fixed resolution or NaFlex (variable resolution)."""

import keras
from keras_hub.models import Backbone

from keras_siglip2.layers.embeddings import (
    LearnedPositionEmbedding,
    NaFlexPositionEmbedding,
    PatchEmbedding,
)
from keras_siglip2.layers.pooling import MAPHead
from keras_siglip2.layers.transformer import TransformerEncoderBlock, layer_norm
from keras_siglip2.models.input_checks import ChecksInputs, check_fixed_images, check_naflex_inputs


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2VisionEncoder(ChecksInputs, Backbone):
    """Patch embedding → pre-LN transformer → final LayerNorm → MAP pooling.

    Fixed resolution (`image_size` set): input `{"images": (B, R, R, 3)}` in
    [-1, 1]. NaFlex (`image_size=None`): input `{"patches": (B, N, P·P·3),
    "patch_mask": (B, N), "spatial_shapes": (B, 2)}`, any N.

    Outputs: `pooled (B, D)` (the MAP head output, no projection) and
    `patch_features (B, N, D)` (tokens after the final LayerNorm).
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
        naflex = image_size is None
        if naflex:
            inputs = {
                "patches": keras.Input((None, patch_size * patch_size * 3), name="patches"),
                "patch_mask": keras.Input((None,), dtype="bool", name="patch_mask"),
                "spatial_shapes": keras.Input((2,), dtype="int32", name="spatial_shapes"),
            }
            pixels, key_mask = inputs["patches"], inputs["patch_mask"]
        else:
            inputs = {"images": keras.Input((image_size, image_size, 3), name="images")}
            pixels, key_mask = inputs["images"], None

        # Variable paths start with the tower's name: both towers have
        # `encoder_block_i`, and the torch backend keys parameters by path.
        with keras.name_scope(kwargs.get("name") or "vision_encoder"):
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

            x = self.patch_embedding(pixels)
            if naflex:
                x = self.position_embedding(x, inputs["spatial_shapes"])
            else:
                x = self.position_embedding(x)
            for block in self.encoder_blocks:
                x = block(x, key_mask=key_mask)
            patch_features = self.final_norm(x)
            pooled = self.pooling(patch_features, key_mask=key_mask)
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
