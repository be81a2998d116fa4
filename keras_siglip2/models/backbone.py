"""SigLIP2Backbone: both towers and the sigmoid logit head."""

import math
import warnings

import keras
from keras_hub.models import Backbone

from keras_siglip2.layers.embeddings import extend_text_positions
from keras_siglip2.layers.similarity import SigmoidLogitHead, l2_normalize
from keras_siglip2.models.input_checks import ChecksInputs
from keras_siglip2.models.text_encoder import SigLIP2TextEncoder
from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2Backbone(ChecksInputs, Backbone):
    """The image and text towers plus the learned temperature `t'` and bias `b`.

    `t'` and `b` start at the paper's training init, log 10 and −10 (for
    large batches; small batches learn faster from `b ≈ −log(batch)`).

    Built from the two tower configs (see `keras_siglip2.configs`):
    `SigLIP2Backbone(vision={...}, text={...})`, or
    `SigLIP2Backbone.from_config(keras_siglip2.configs.tiny())`.

    Inputs: the image tower's inputs (`images`, or NaFlex `patches`,
    `patch_mask`, `spatial_shapes`) and `token_ids (B_t, L)`.
    Outputs: `image_embeddings (B_i, D)`, `text_embeddings (B_t, D)`
    (L2-normalised, float32), `logits (B_i, B_t)` float32 and
    `patch_features (B_i, N, D)`.
    """

    def __init__(
        self,
        vision,
        text,
        initial_log_temperature=math.log(10.0),
        initial_bias=-10.0,
        dtype=None,
        **kwargs,
    ):
        self.vision_encoder = SigLIP2VisionEncoder(**vision, dtype=dtype, name="vision_encoder")
        self.text_encoder = SigLIP2TextEncoder(**text, dtype=dtype, name="text_encoder")
        if self.text_encoder.projection_dim != self.vision_encoder.hidden_dim:
            raise ValueError(
                f"The text head projects to {self.text_encoder.projection_dim} but the "
                f"image embedding has width {self.vision_encoder.hidden_dim}."
            )
        self.logit_head = SigmoidLogitHead(
            initial_log_temperature, initial_bias, name="logit_head"
        )

        image_inputs = {
            name: keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)
            for name, tensor in self.vision_encoder.input.items()
        }
        token_ids = keras.Input((self.text_encoder.sequence_length,), dtype="int32", name="token_ids")
        image_outputs = self.vision_encoder(image_inputs)
        text_outputs = self.text_encoder({"token_ids": token_ids})
        outputs = self.logit_head(image_outputs["pooled"], text_outputs["pooled"])
        outputs["patch_features"] = image_outputs["patch_features"]
        super().__init__(
            inputs={**image_inputs, "token_ids": token_ids},
            outputs=outputs,
            dtype=dtype,
            **kwargs,
        )
        self.vision = dict(vision)
        self.text = dict(text)
        self.initial_log_temperature = initial_log_temperature
        self.initial_bias = initial_bias

    def check_inputs(self, inputs):
        """Raise a clear `ValueError` for inputs either tower cannot take."""
        if not isinstance(inputs, dict) or "token_ids" not in inputs:
            raise ValueError(
                "SigLIP2Backbone takes a dict of the image tower's inputs plus "
                f"'token_ids'; got {sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        self.vision_encoder.check_inputs({k: v for k, v in inputs.items() if k != "token_ids"})
        self.text_encoder.check_inputs({"token_ids": inputs["token_ids"]})

    @staticmethod
    def get_layout_map(device_mesh, model_dim="model", data_dim="batch"):
        """A `keras.distribution.LayoutMap` sharding every large variable.

        Megatron-style tensor parallelism over `model_dim` (attention heads,
        MLP hidden units, vocabulary rows, prototypes) and FSDP-style sharding
        of the other large axis over `data_dim` (the widths). Covers both
        towers, the 256k token embedding, the LocCa decoder, the
        self-distillation heads and any copy of a tower under another name
        (the EMA teacher gets its student's layout): keys are path regexes
        matched anywhere below the model. LayerNorms, the logit scalars and
        the remaining biases are replicated.

        Use it with `keras.distribution.ModelParallel(layout_map=...,
        batch_dim_name=data_dim)` (or `keras_siglip2.distribution.model_parallel`).
        Mesh axes of size 1 leave the corresponding axis whole: a `(n, 1)`
        mesh is pure FSDP, a `(1, n)` mesh pure tensor parallelism.
        Every sharded axis must be divisible by its mesh axis size.
        """
        model, data = model_dim, data_dim
        layout_map = keras.distribution.LayoutMap(device_mesh)
        layouts = {
            # (vocabulary, D): both the text tower's and the decoder's table.
            r"token_embeddings": (model, data),
            r"(position_embedding/embeddings|position_embeddings)": (None, data),
            r"patch_embedding/kernel": (None, data),
            r"memory_position_kernel": (None, data),  # LocCa decoder: (features, D_img)
            # Attention kernels (D, heads, head_dim) and (heads, head_dim, D).
            r"attention/(query|key|value)/kernel": (data, model, None),
            r"attention/(query|key|value)/bias": (model, None),
            r"attention/attention_output/kernel": (model, None, data),
            r"mlp/fc1/kernel": (data, model),
            r"mlp/fc1/bias": (model,),
            r"mlp/fc2/kernel": (model, data),
            r"text_encoder/head/kernel": (model, data),
            # Self-distillation heads (student and teacher).
            r"_head/dense_\d+/kernel": (data, model),
            r"_head/prototypes": (data, model),
        }
        for pattern, axes in layouts.items():
            layout_map[rf".*{pattern}"] = axes
        return layout_map

    @property
    def naflex(self):
        return self.vision_encoder.naflex

    def quantize(self, mode, **kwargs):
        """Keras' `quantize` (`"int8"`, `"int4"`, `"float8"`) on every `Dense`
        and `EinsumDense` of both towers: the attention projections, the
        MLPs and the text head. Embeddings, LayerNorms and the patch
        embedding stay as they are (without one warning each from Keras)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
            super().quantize(mode, **kwargs)

    def with_text_length(self, sequence_length):
        """A new backbone whose text tower takes `sequence_length` tokens
        (more than it was trained with), with this one's weights and the
        text positions extended by `layers.embeddings.extend_text_positions`.
        An extension beyond the released models: texts that fit the old
        length give nearly, not exactly, the same embeddings (the extra
        padding takes part in attention), and `fit` trains the new positions.
        """
        config = self.get_config()
        config["text"] = {**config["text"], "sequence_length": int(sequence_length)}
        resized = type(self).from_config(config)
        positions = self.text_encoder.embedding.position_embeddings
        for old, new in zip(self.weights, resized.weights):
            value = keras.ops.convert_to_numpy(old)
            if old is positions:
                value = extend_text_positions(value, sequence_length)
            new.assign(value)
        return resized

    def default_lora_layer_names(self):
        """LoRA targets of `enable_lora`: the attention query and value
        projections (as keras-hub) and both MLP layers, in both towers and
        the MAP head."""
        return ["query", "value", "fc1", "fc2"]

    def enable_lora(self, rank, target_layer_names=None, train_logit_head=False):
        """Freeze every weight and add rank-`rank` LoRA factors to the target
        layers (`default_lora_layer_names`): `fit` then trains the factors
        only (Keras would also train the target layers' biases; they are
        frozen here), and the temperature and bias with
        `train_logit_head=True`. `save_lora_weights(path.lora.h5)` /
        `load_lora_weights` store the factors alone."""
        super().enable_lora(rank, target_layer_names)
        for layer in self._flatten_layers(include_self=False):
            if getattr(layer, "lora_enabled", False) and getattr(layer, "bias", None) is not None:
                layer.bias.trainable = False
        self.logit_head.trainable = train_logit_head

    def encode_images(self, inputs):
        """Image-tower inputs → L2-normalised `(B, D)` float32 embeddings."""
        pooled = self.vision_encoder(inputs)["pooled"]
        return l2_normalize(keras.ops.cast(pooled, "float32"))

    def encode_texts(self, token_ids):
        """`token_ids (B, L)` → L2-normalised `(B, D)` float32 embeddings."""
        pooled = self.text_encoder({"token_ids": token_ids})["pooled"]
        return l2_normalize(keras.ops.cast(pooled, "float32"))

    def get_config(self):
        config = super().get_config()
        config.update(
            vision=self.vision,
            text=self.text,
            initial_log_temperature=self.initial_log_temperature,
            initial_bias=self.initial_bias,
        )
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build from a released name or alias (`"so400m"`), a `kaggle://` or
        `hf://` handle, a local preset directory (ours, keras-hub SigLIP,
        Hugging Face safetensors) or a big_vision `.npz`.
        `load_weights=False` gives random weights (offline for released names).
        Keyword arguments: `dtype`. See `keras_siglip2.presets.load_backbone`.
        `save_to_preset(dir)` (inherited from keras-hub) writes our format."""
        # Imported here and given `cls`: presets/ depends on models/, not the
        # other way round.
        from keras_siglip2.presets.loader import load_backbone

        return load_backbone(cls, preset, load_weights=load_weights, **kwargs)
