"""SigLIP2: backbone + preprocessor + training heads, trained with `fit`."""


import json
from pathlib import Path

import keras
from keras import ops
from safetensors import safe_open
from safetensors.numpy import save_file

from keras_siglip2 import losses
from keras_siglip2.layers.similarity import l2_normalize
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.heads import LocCaDecoder
from keras_siglip2.models.inference import InferenceMethods

DEFAULT_LOSS_WEIGHTS = {"sigmoid": 1.0, "locca": 1.0}


class LatestValue(keras.metrics.Metric):
    """Reports the most recent value (for the learned temperature and bias)."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, value):
        self.value.assign(ops.cast(ops.convert_to_tensor(value), self.dtype))

    def result(self):
        return ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(0.0)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2(InferenceMethods, keras.Model):
    """SigLIP 2 for inference and training.

    `SigLIP2(backbone, preprocessor=None, locca=True)`. With `locca=True` a
    LocCa decoder (text-tower widths, half its depth) is attached for the
    captioning and localisation losses; it is used only in training.

    Training batch (see `keras_siglip2.data`): the backbone inputs plus, for
    LocCa, `{task}_inputs`, `{task}_targets`, `{task}_weights` `(B, T)` for
    task in captioning/referring/grounded and `captioning_parallel (B,)`.
    `compute_loss` returns the weighted sum and logs `sigmoid_loss`,
    `captioning_loss`, `localization_loss`, `temperature` and `bias`.
    """

    def __init__(
        self,
        backbone,
        preprocessor=None,
        locca=True,
        decoder_layers=None,
        num_coordinate_bins=1000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.locca = locca
        self.num_coordinate_bins = num_coordinate_bins
        text = backbone.text_encoder
        self.decoder_layers = decoder_layers or max(1, text.num_layers // 2)
        self.decoder = None
        if locca:
            self.decoder = LocCaDecoder(
                text_vocabulary_size=text.vocabulary_size,
                sequence_length=text.sequence_length,
                hidden_dim=text.hidden_dim,
                num_layers=self.decoder_layers,
                num_heads=text.num_heads,
                intermediate_dim=text.intermediate_dim,
                num_coordinate_bins=num_coordinate_bins,
                dtype=backbone.dtype_policy,
                name="locca_decoder",
            )
            vision = backbone.vision_encoder
            self.decoder.build(
                (None, text.sequence_length), (None, None, vision.hidden_dim)
            )
        self.sigmoid_loss_tracker = keras.metrics.Mean(name="sigmoid_loss")
        self.captioning_loss_tracker = keras.metrics.Mean(name="captioning_loss")
        self.localization_loss_tracker = keras.metrics.Mean(name="localization_loss")
        self.temperature_tracker = LatestValue(name="temperature")
        self.bias_tracker = LatestValue(name="bias")
        self.loss_weights_ = dict(DEFAULT_LOSS_WEIGHTS)
        self.chunk_size = 256
        self.built = True  # every sub-layer is built above

    # ------------------------------------------------------------------ build
    @classmethod
    def from_config(cls, config):
        """Accepts `get_config()` output or a bare backbone config
        (`{"vision": ..., "text": ...}`, e.g. `configs.tiny()`)."""
        config = dict(config)
        if "backbone" not in config:
            return cls(SigLIP2Backbone.from_config(config))
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(
                config["preprocessor"]
            )
        return cls(**config)

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)
            if self.preprocessor is not None
            else None,
            "locca": self.locca,
            "decoder_layers": self.decoder_layers,
            "num_coordinate_bins": self.num_coordinate_bins,
        }

    TASK_CONFIG_FILE = "siglip2_task.json"
    TASK_WEIGHTS_FILE = "siglip2_task.safetensors"

    def _head_variables(self):
        """Variables of the training heads (not of the backbone), by path."""
        backbone = {id(v) for v in self.backbone.weights}
        return {v.path: v for v in self.weights if id(v) not in backbone}

    def save_to_preset(self, preset_dir):
        """Write backbone (keras-hub format), preprocessor assets, and the
        training heads (`siglip2_task.json` + safetensors) to `preset_dir`."""
        preset_dir = Path(preset_dir)
        preset_dir.mkdir(parents=True, exist_ok=True)
        self.backbone.save_to_preset(str(preset_dir))
        if self.preprocessor is not None:
            self.preprocessor.save_to_preset(str(preset_dir))
        task = {k: v for k, v in self.get_config().items() if k not in ("backbone", "preprocessor")}
        (preset_dir / self.TASK_CONFIG_FILE).write_text(json.dumps(task, indent=2))
        heads = {path: ops.convert_to_numpy(v) for path, v in self._head_variables().items()}
        if heads:
            save_file(heads, str(preset_dir / self.TASK_WEIGHTS_FILE))

    @classmethod
    def from_preset(cls, preset, load_weights=True, dtype=None, **kwargs):
        """Load a preset: a released name/alias (`"so400m"`, `"b16-naflex"`), an
        `hf://` or `kaggle://` handle, a local directory (ours, keras-hub,
        Hugging Face) or a big_vision `.npz` (see `keras_siglip2.presets`).

        Training heads saved with the preset are restored; released
        checkpoints have none (pass `locca=True` to attach a fresh decoder).
        """
        from keras_siglip2.presets.preprocessing import load_preprocessor
        from keras_siglip2.presets.loader import load_backbone
        from keras_siglip2.presets.resolver import locate_preset

        located = locate_preset(preset)
        backbone = load_backbone(located, load_weights=load_weights, dtype=dtype)
        preprocessor = load_preprocessor(located, backbone)
        task_file = located.file(cls.TASK_CONFIG_FILE, required=False)
        task = {"locca": False}
        if task_file:
            task = json.loads(Path(task_file).read_text())
            task.pop("name", None)
        task.update(kwargs)
        model = cls(backbone, preprocessor, **task)
        weights_file = located.file(cls.TASK_WEIGHTS_FILE, required=False)
        if load_weights and weights_file:
            model._load_head_weights(weights_file)
        return model

    def _load_head_weights(self, path):
        from keras_siglip2.presets.weights import assign

        with safe_open(path, framework="numpy") as f:
            stored = set(f.keys())
            for name, variable in self._head_variables().items():
                if name in stored:
                    assign(variable, f.get_tensor(name), source=f"{path}:{name}")

    # ----------------------------------------------------------------- forward
    def _image_inputs(self, inputs):
        return {name: inputs[name] for name in self.backbone.vision_encoder.input}

    def call(self, inputs, training=False):
        """Batch dict → `image_embeddings`, `patch_features`, and with
        `token_ids` also `text_embeddings`, `logits`; with LocCa inputs
        `decoder_hidden (3B, T, D)` (captioning, referring, grounded)."""
        image_inputs = self._image_inputs(inputs)
        vision = self.backbone.vision_encoder(image_inputs, training=training)
        if "token_ids" in inputs:
            text = self.backbone.text_encoder({"token_ids": inputs["token_ids"]}, training=training)
            outputs = dict(self.backbone.logit_head(vision["pooled"], text["pooled"]))
        else:
            outputs = {"image_embeddings": l2_normalize(ops.cast(vision["pooled"], "float32"))}
        outputs["patch_features"] = vision["patch_features"]
        if self.decoder is not None and "captioning_inputs" in inputs:
            outputs["decoder_hidden"] = self._decode_tasks(
                inputs, vision["patch_features"], image_inputs.get("patch_mask")
            )
        return outputs

    def _decode_tasks(self, inputs, patch_features, patch_mask):
        """One decoder pass over the three LocCa tasks stacked on the batch axis."""
        tasks = LocCaDecoder.TASKS
        batch = ops.shape(inputs["captioning_inputs"])[0]
        tokens = ops.concatenate([inputs[f"{task}_inputs"] for task in tasks], axis=0)
        task_ids = ops.repeat(ops.arange(len(tasks), dtype="int32"), batch)
        parallel = ops.cast(inputs["captioning_parallel"], "bool")
        no_parallel = ops.zeros_like(parallel)
        parallel = ops.concatenate([parallel, no_parallel, no_parallel], axis=0)
        memory = ops.concatenate([patch_features] * len(tasks), axis=0)
        memory_mask = None
        if patch_mask is not None:
            memory_mask = ops.concatenate([patch_mask] * len(tasks), axis=0)
        return self.decoder(tokens, memory, memory_mask, task_ids, parallel)

    # -------------------------------------------------------------- training
    def compile(
        self,
        optimizer="auto",
        learning_rate=1e-3,
        weight_decay=1e-4,
        warmup_steps=0,
        total_steps=None,
        global_clipnorm=1.0,
        loss_weights=None,
        chunk_size=256,
        **kwargs,
    ):
        """Paper defaults (SPEC §3): Adam, lr 1e-3, decoupled weight decay 1e-4
        on kernels only (scaled by the schedule, not by the learning rate),
        global-norm clipping at 1, linear warmup then cosine decay to 0 over
        `total_steps` (constant after warmup if `total_steps` is None).

        `loss_weights`: dict overriding `{"sigmoid": 1.0, "locca": 1.0}`.
        `chunk_size`: tokens per chunk of the decoder's vocabulary cross entropy.
        """
        if optimizer == "auto":
            optimizer = paper_optimizer(
                self, learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm
            )
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(
                f"Unknown loss weights {sorted(unknown)}; expected keys among "
                f"{sorted(DEFAULT_LOSS_WEIGHTS)}."
            )
        self.loss_weights_ = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.chunk_size = chunk_size
        super().compile(optimizer=optimizer, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        head = self.backbone.logit_head
        sigmoid = losses.sigmoid_loss(
            y_pred["image_embeddings"], y_pred["text_embeddings"], head.log_temperature, head.bias
        )
        self.sigmoid_loss_tracker.update_state(sigmoid)
        self.temperature_tracker.update_state(ops.exp(head.log_temperature))
        self.bias_tracker.update_state(head.bias)
        total = self.loss_weights_["sigmoid"] * sigmoid
        if "decoder_hidden" in y_pred:
            total = total + self.loss_weights_["locca"] * self._locca_loss(x, y_pred)
        return total

    def _locca_loss(self, x, y_pred):
        """Token-mean cross entropy over all three tasks' target tokens; the
        captioning and localisation parts are logged separately."""
        hidden = ops.split(y_pred["decoder_hidden"], 3, axis=0)
        # The chunked loop needs static shapes; Keras' symbolic shape pass (and
        # TF graphs of unknown batch size) get the dense form, same value.
        static = None not in y_pred["decoder_hidden"].shape
        sums = {}
        for task, task_hidden in zip(LocCaDecoder.TASKS, hidden):
            arguments = (
                task_hidden,
                self.decoder.output_kernel,
                ops.convert_to_tensor(self.decoder.output_bias),
                x[f"{task}_targets"],
                x[f"{task}_weights"],
            )
            if static:
                mean, count = losses.chunked_cross_entropy(
                    *arguments, chunk_size=self.chunk_size, return_weight_sum=True
                )
            else:
                mean, count = losses.cross_entropy(*arguments, return_weight_sum=True)
            sums[task] = (mean * count, count)

        def token_mean(*tasks):
            total = sum(sums[t][0] for t in tasks)
            count = sum(sums[t][1] for t in tasks)
            return total / ops.maximum(count, 1.0)

        self.captioning_loss_tracker.update_state(token_mean("captioning"))
        self.localization_loss_tracker.update_state(token_mean("referring", "grounded"))
        return token_mean(*LocCaDecoder.TASKS)


def paper_optimizer(model, learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm):
    """AdamW as in the paper: decay only kernels, decay follows the schedule."""
    if total_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    elif warmup_steps:
        schedule = WarmupConstant(learning_rate, warmup_steps)
    else:
        schedule = learning_rate
    # Keras AdamW decays by `weight_decay · lr(t)`; dividing by the base rate
    # makes the decay `weight_decay · lr(t)/lr(0)`: decoupled from the lr value.
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay / learning_rate if learning_rate else 0.0,
        global_clipnorm=global_clipnorm,
    )
    not_kernels = [v for v in model.trainable_variables if not _is_kernel(v)]
    optimizer.exclude_from_weight_decay(var_list=not_kernels)
    return optimizer


def _is_kernel(variable):
    return "kernel" in variable.name


@keras.saving.register_keras_serializable(package="keras_siglip2")
class WarmupConstant(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then constant."""

    def __init__(self, learning_rate, warmup_steps):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        fraction = ops.minimum(ops.cast(step, "float32") / max(1, self.warmup_steps), 1.0)
        return self.learning_rate * fraction

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}

