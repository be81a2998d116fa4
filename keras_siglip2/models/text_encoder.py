"""SigLIP 2 text tower: bidirectional transformer pooled at the last position."""

import keras
from keras_hub.models import Backbone

from keras_siglip2.layers.embeddings import TextEmbedding
from keras_siglip2.layers.projections import Dense
from keras_siglip2.layers.transformer import TransformerEncoderBlock, layer_norm
from keras_siglip2.models.input_checks import ChecksInputs, check_token_ids
from keras_siglip2.models.precision import check_compute_dtype


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2TextEncoder(ChecksInputs, Backbone):
    """Token + position embedding → pre-LN transformer (no padding mask: pad
    tokens take part, as in training) → final LayerNorm → hidden state at the
    last position (index L−1) → Dense head to `projection_dim`.

    Input `{"token_ids": (B, L)}` int, right-padded to exactly L.
    Outputs: `pooled (B, projection_dim)`, `token_features (B, L, D)`.
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        projection_dim,
        dtype=None,
        **kwargs,
    ):
        check_compute_dtype(dtype)
        token_ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
        # Variable paths start with the tower's name: both towers have
        # `encoder_block_i`, and the torch backend keys parameters by path. A
        # fixed default (not Keras' unique "sig_lip2_…_1") keeps an unnamed
        # tower's paths the same after a `.keras` reload.
        kwargs.setdefault("name", "text_encoder")
        with keras.name_scope(kwargs["name"]):
            self.embedding = TextEmbedding(
                vocabulary_size, sequence_length, hidden_dim, dtype=dtype, name="embedding"
            )
            self.encoder_blocks = [
                TransformerEncoderBlock(
                    num_heads, intermediate_dim, dtype=dtype, name=f"encoder_block_{i}"
                )
                for i in range(num_layers)
            ]
            self.final_norm = layer_norm("final_norm", dtype)
            self.head = Dense(projection_dim, dtype=dtype, name="head")

            x = self.embedding(token_ids)
            for block in self.encoder_blocks:
                x = block(x)
            token_features = self.final_norm(x)
            pooled = self.head(token_features[:, -1])
        super().__init__(
            inputs={"token_ids": token_ids},
            outputs={"pooled": pooled, "token_features": token_features},
            dtype=dtype,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.projection_dim = projection_dim
        self.token_embedding = self.embedding

    def check_inputs(self, inputs):
        """Raise a clear `ValueError` for token ids this tower cannot take."""
        if not isinstance(inputs, dict) or "token_ids" not in inputs:
            raise ValueError(
                "The text tower takes a dict {'token_ids': (batch, "
                f"{self.sequence_length}) int}}; got {type(inputs).__name__}."
            )
        check_token_ids(inputs["token_ids"], self.vocabulary_size, self.sequence_length)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            sequence_length=self.sequence_length,
            hidden_dim=self.hidden_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            projection_dim=self.projection_dim,
        )
        return config
