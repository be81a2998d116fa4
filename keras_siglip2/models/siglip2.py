"""SigLIP2: backbone + preprocessor + training heads, trained with `fit`."""


import json
from pathlib import Path

import keras
from keras import ops
from safetensors import safe_open
from safetensors.numpy import save_file

from keras_siglip2 import distribution, losses
from keras_siglip2.layers.similarity import l2_normalize
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.heads import LocCaDecoder, patch_centres
from keras_siglip2.models.inference import InferenceMethods
from keras_siglip2.models.self_supervised import (
    PrototypeHead,
    embed_global_view,
    embed_local_views,
    ema_update,
    encode_tokens,
    size_factor,
)
from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder

DEFAULT_LOSS_WEIGHTS = {"sigmoid": 1.0, "locca": 1.0}

# Self-distillation and masked prediction: the paper leaves these open; the
# values and their sources are in docs/self-supervised.md.
SELF_SUPERVISED_DEFAULTS = {
    "num_prototypes": 65536,  # DINO
    "num_patch_prototypes": 8192,  # iBOT's patch head
    "head_hidden_dim": 2048,  # DINO head
    "head_bottleneck_dim": 256,  # DINO head
    "head_layers": 3,  # DINO head
    "teacher_momentum": 0.996,  # DINO's base EMA momentum, held fixed
    "center_momentum": 0.9,  # DINO
    "student_temperature": 0.1,  # DINO
    "teacher_temperature": 0.04,  # DINO (without its warmup)
    "num_local_views": 8,  # SigLIP 2
    "local_view_patches": 6,  # DINO: 96 px local crops for 224 px / P16 global views
    "local_crop_scale": (0.05, 0.4),  # DINO
    "mask_ratio": 0.5,  # SigLIP 2
}


def self_supervised_settings(setting, patch_size):
    """`None`/`False` → None; `True` → defaults; a dict → defaults updated by it
    (unknown keys raise). Adds `local_view_size` = patches × P in pixels."""
    if not setting:
        return None
    overrides = {} if setting is True else dict(setting)
    overrides.pop("local_view_size", None)
    unknown = set(overrides) - set(SELF_SUPERVISED_DEFAULTS)
    if unknown:
        raise ValueError(
            f"Unknown self-supervised settings {sorted(unknown)}; expected keys among "
            f"{sorted(SELF_SUPERVISED_DEFAULTS)}."
        )
    settings = {**SELF_SUPERVISED_DEFAULTS, **overrides}
    settings["local_crop_scale"] = tuple(settings["local_crop_scale"])
    settings["local_view_size"] = settings["local_view_patches"] * patch_size
    return settings


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
    `decoder_memory_positions=False` drops the decoder's patch-position
    features (see `LocCaDecoder`), giving the paper's plain decoder.

    Training batch (see `keras_siglip2.data`): the backbone inputs plus, for
    LocCa, `{task}_inputs`, `{task}_targets`, `{task}_weights` `(B, T)` for
    task in captioning/referring/grounded and `captioning_parallel (B,)`.
    `compute_loss` returns the weighted sum and logs `sigmoid_loss`,
    `captioning_loss`, `localization_loss`, `temperature` and `bias`.

    With `self_supervised=True` (or a dict overriding
    `SELF_SUPERVISED_DEFAULTS`) the model also holds the self-distillation and
    masked-prediction heads, a learned mask token and an EMA teacher (a frozen
    copy of the image tower and heads); batches then carry `local_images
    (B, V, r, r, 3)` and `patch_drop_mask (B, N)`, and the logs add
    `self_distillation_loss` and `masked_prediction_loss` (exactly 0 before
    the switch-on step set in `compile`).
    """

    def __init__(
        self,
        backbone,
        preprocessor=None,
        locca=True,
        decoder_layers=None,
        num_coordinate_bins=1000,
        self_supervised=None,
        decoder_memory_positions=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.locca = locca
        self.num_coordinate_bins = num_coordinate_bins
        self.decoder_memory_positions = decoder_memory_positions
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
                memory_positions=decoder_memory_positions,
                dtype=backbone.dtype_policy,
                name="locca_decoder",
            )
            vision = backbone.vision_encoder
            self.decoder.build(
                (None, text.sequence_length), (None, None, vision.hidden_dim)
            )
        vision = backbone.vision_encoder
        self.self_supervised = self_supervised_settings(self_supervised, vision.patch_size)
        if self.self_supervised is not None:
            self._build_self_supervised(vision)
        self.sigmoid_loss_tracker = keras.metrics.Mean(name="sigmoid_loss")
        # One logged metric per loss the model has (absent losses are not shown as 0).
        if locca:
            self.captioning_loss_tracker = keras.metrics.Mean(name="captioning_loss")
            self.localization_loss_tracker = keras.metrics.Mean(name="localization_loss")
        if self.self_supervised is not None:
            self.self_distillation_loss_tracker = keras.metrics.Mean(
                name="self_distillation_loss"
            )
            self.masked_prediction_loss_tracker = keras.metrics.Mean(
                name="masked_prediction_loss"
            )
        self.temperature_tracker = LatestValue(name="temperature")
        self.bias_tracker = LatestValue(name="bias")
        self.loss_weights_ = self.default_loss_weights()
        self.chunk_size = 256
        self.sigmoid_loss_kind = "auto"
        self.self_supervised_start = 0
        self.curation = None
        self.built = True  # every sub-layer is built above

    def _build_self_supervised(self, vision):
        """Student heads, mask token, EMA teacher (tower + heads) and centres."""
        settings = self.self_supervised
        policy = self.backbone.dtype_policy

        def heads(prefix):
            shared = dict(
                hidden_dim=settings["head_hidden_dim"],
                bottleneck_dim=settings["head_bottleneck_dim"],
                num_layers=settings["head_layers"],
                dtype=policy,
            )
            pair = (
                PrototypeHead(settings["num_prototypes"], name=f"{prefix}global_head", **shared),
                PrototypeHead(
                    settings["num_patch_prototypes"], name=f"{prefix}patch_head", **shared
                ),
            )
            for head in pair:
                head.build((None, vision.hidden_dim))
            return pair

        self.global_head, self.patch_head = heads("")
        self.mask_token = self.add_weight(
            name="mask_token",
            shape=(vision.hidden_dim,),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        teacher_config = {**vision.get_config(), "name": "teacher_vision_encoder"}
        self.teacher = SigLIP2VisionEncoder.from_config(teacher_config)
        self.teacher_global_head, self.teacher_patch_head = heads("teacher_")
        for layer in (self.teacher, self.teacher_global_head, self.teacher_patch_head):
            layer.trainable = False
        self.reset_teacher()
        self.global_center = self.add_weight(
            name="global_center", shape=(settings["num_prototypes"],),
            initializer="zeros", trainable=False,
        )
        self.patch_center = self.add_weight(
            name="patch_center", shape=(settings["num_patch_prototypes"],),
            initializer="zeros", trainable=False,
        )
        self.training_step = self.add_weight(
            name="training_step", shape=(), dtype="int32", initializer="zeros", trainable=False
        )

    def reset_teacher(self):
        """Copy the student's image tower and heads into the EMA teacher."""
        for teacher, student in self.teacher_pairs():
            # A copy: on JAX, sharing the student's buffer would make the
            # compiled step donate one buffer twice.
            teacher.assign(ops.copy(student))

    def teacher_pairs(self):
        """`(teacher variable, student variable)` pairs of the EMA teacher."""
        teacher = self.teacher, self.teacher_global_head, self.teacher_patch_head
        student = self.backbone.vision_encoder, self.global_head, self.patch_head
        return list(
            zip(
                [v for layer in teacher for v in layer.weights],
                [v for layer in student for v in layer.weights],
            )
        )

    def default_loss_weights(self):
        """Sigmoid 1, LocCa 1; self-distillation 1 and masked prediction 0.25,
        both times the size factor (B 0.25, L 0.5, So400m 1, g 0.5)."""
        weights = dict(DEFAULT_LOSS_WEIGHTS)
        if self.self_supervised is not None:
            factor = size_factor(self.backbone.vision_encoder.hidden_dim)
            weights.update(self_distillation=factor, masked_prediction=0.25 * factor)
        return weights

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
            "decoder_memory_positions": self.decoder_memory_positions,
            "self_supervised": self.self_supervised,
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
        backbone = load_backbone(SigLIP2Backbone, located, load_weights=load_weights, dtype=dtype)
        preprocessor = load_preprocessor(located, backbone)
        task_file = located.file(cls.TASK_CONFIG_FILE, required=False)
        task = {"locca": False}
        if task_file:
            task = json.loads(Path(task_file).read_text())
            task.pop("name", None)
            # Saved before the decoder had memory positions: keep its plain decoder.
            task.setdefault("decoder_memory_positions", False)
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
        positions = self.image_positions(inputs, patch_features)
        positions = ops.concatenate([positions] * len(tasks), axis=0)
        return self.decoder(tokens, memory, memory_mask, task_ids, parallel, positions)

    def image_positions(self, image_inputs, patch_features):
        """Patch centres `(B, N, 2)` in [0, 1] of the tower's `patch_features
        (B, N, D)` for these image inputs (the decoder's memory positions)."""
        vision = self.backbone.vision_encoder
        batch, num_tokens = ops.shape(patch_features)[0], ops.shape(patch_features)[1]
        if vision.naflex:
            grids = image_inputs["spatial_shapes"]
        else:
            grids = ops.full((batch, 2), vision.image_size // vision.patch_size)
        return patch_centres(num_tokens, grids)

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
        sigmoid_loss="auto",
        self_supervised_start=0.8,
        curation_teacher=None,
        curation_fraction=0.5,
        **kwargs,
    ):
        """Paper defaults (SPEC §3): Adam, lr 1e-3, decoupled weight decay 1e-4
        on kernels only (scaled by the schedule, not by the learning rate),
        global-norm clipping at 1, linear warmup then cosine decay to 0 over
        `total_steps` (constant after warmup if `total_steps` is None).

        `loss_weights`: dict overriding `default_loss_weights()` (keys
            `sigmoid`, `locca`, and with self-supervision `self_distillation`,
            `masked_prediction`).
        `chunk_size`: tokens per chunk of the decoder's vocabulary cross entropy.
        `sigmoid_loss`: "auto" (the ring loss under a multi-device JAX
            `keras.distribution`, else dense), "dense", "chunked" or "ring";
            see `keras_siglip2.distribution.sigmoid_loss`.
        `self_supervised_start`: when self-distillation and masked prediction
            switch on: a fraction of `total_steps` (default 0.8, as the paper)
            or an int step. The teacher copies the student until then.
        `curation_teacher`: opt-in active data curation (ACID): a frozen
            `SigLIP2`/`SigLIP2Backbone` taking the same inputs; each batch is
            a super-batch of which the `curation_fraction` most learnable
            examples (learner − teacher per-example sigmoid loss) are trained on.
        """
        if optimizer == "auto":
            optimizer = paper_optimizer(
                self, learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm
            )
        defaults = self.default_loss_weights()
        unknown = set(loss_weights or {}) - set(defaults)
        if unknown:
            raise ValueError(
                f"Unknown loss weights {sorted(unknown)}; expected keys among "
                f"{sorted(defaults)}."
            )
        self.loss_weights_ = {**defaults, **(loss_weights or {})}
        self.chunk_size = chunk_size
        distribution.resolve_sigmoid_loss(sigmoid_loss)  # rejects unknown names now
        self.sigmoid_loss_kind = sigmoid_loss
        if self.self_supervised is not None:
            self.self_supervised_start = _switch_on_step(self_supervised_start, total_steps)
        self.curation = None
        if curation_teacher is not None:
            if not 0.0 < curation_fraction <= 1.0:
                raise ValueError(f"`curation_fraction` must be in (0, 1]; got {curation_fraction}.")
            teacher = getattr(curation_teacher, "backbone", curation_teacher)
            teacher.trainable = False
            self.curation = {"teacher": teacher, "fraction": float(curation_fraction)}
        super().compile(optimizer=optimizer, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        head = self.backbone.logit_head
        image_embeddings, text_embeddings = y_pred["image_embeddings"], y_pred["text_embeddings"]
        example_weights = None
        if self.curation is not None:
            selected, example_weights = self._curate(x, image_embeddings, text_embeddings)
            image_embeddings = ops.take(image_embeddings, selected, axis=0)
            text_embeddings = ops.take(text_embeddings, selected, axis=0)
        sigmoid = distribution.sigmoid_loss(
            image_embeddings, text_embeddings, head.log_temperature, head.bias,
            kind=self.sigmoid_loss_kind,
        )
        self.sigmoid_loss_tracker.update_state(sigmoid)
        self.temperature_tracker.update_state(ops.exp(head.log_temperature))
        self.bias_tracker.update_state(head.bias)
        total = self.loss_weights_["sigmoid"] * sigmoid
        if "decoder_hidden" in y_pred:
            locca = self._locca_loss(x, y_pred, example_weights)
            total = total + self.loss_weights_["locca"] * locca
        if self.self_supervised is not None and "local_images" in x:
            total = total + self._self_supervised_loss(x, example_weights, training)
        return distribution.scale_loss_for_replicas(total)

    # ---------------------------------------------- self-distillation / curation
    def _curate(self, x, image_embeddings, text_embeddings):
        """ACID selection → `indices (k,)` of the kept examples and their 0/1
        `example_weights (B,)` (for the per-example losses)."""
        batch = image_embeddings.shape[0]
        if batch is None:
            if not isinstance(image_embeddings, keras.KerasTensor):
                raise ValueError(
                    "Data curation needs a static batch size: batch the dataset "
                    "with `drop_remainder=True` (`data.training_batches` does)."
                )
            batch = 2  # Keras' symbolic shape pass: any size will do
        count = max(1, int(round(batch * self.curation["fraction"])))
        teacher = self.curation["teacher"]
        head = self.backbone.logit_head
        learner = losses.per_example_sigmoid_loss(
            ops.stop_gradient(image_embeddings), ops.stop_gradient(text_embeddings),
            head.log_temperature, head.bias,
        )
        inputs = {**self._image_inputs(x), "token_ids": x["token_ids"]}
        scores = teacher(inputs, training=False)
        reference = losses.per_example_sigmoid_loss(
            scores["image_embeddings"], scores["text_embeddings"],
            teacher.logit_head.log_temperature, teacher.logit_head.bias,
        )
        selected = losses.learnability_selection(learner, reference, count)
        example_weights = ops.sum(ops.one_hot(selected, batch, dtype="float32"), axis=0)
        return selected, example_weights

    def _self_supervised_loss(self, x, example_weights, training):
        """Weighted self-distillation + masked prediction. Before the switch-on
        step both are exactly 0 and are not computed (`ops.cond`); in training
        the teacher (EMA), the centres and the step counter are updated."""
        settings = self.self_supervised
        step = ops.convert_to_tensor(self.training_step)
        active = ops.greater_equal(step, self.self_supervised_start)

        def switched_off():
            # 0 · (student heads and mask token): zero gradients rather than
            # none, so weight decay treats them alike on every backend.
            zero = 0.0 * sum(
                ops.sum(ops.cast(v, "float32"))
                for v in [self.mask_token, *self.global_head.weights, *self.patch_head.weights]
            )
            return (
                zero, zero,
                ops.convert_to_tensor(self.global_center),
                ops.convert_to_tensor(self.patch_center),
            )

        distillation, masked, global_center, patch_center = ops.cond(
            active, lambda: self._self_supervised_terms(x, example_weights), switched_off
        )
        if training:
            self.global_center.assign(global_center)
            self.patch_center.assign(patch_center)
            ema_update(self.teacher_pairs(), settings["teacher_momentum"], active)
            self.training_step.assign(step + 1)
        self.self_distillation_loss_tracker.update_state(distillation)
        self.masked_prediction_loss_tracker.update_state(masked)
        return (
            self.loss_weights_["self_distillation"] * distillation
            + self.loss_weights_["masked_prediction"] * masked
        )

    def _self_supervised_terms(self, x, example_weights):
        """→ (self-distillation loss, masked-prediction loss, new global
        centre, new patch centre), all float32."""
        settings = self.self_supervised
        temperatures = dict(
            student_temperature=settings["student_temperature"],
            teacher_temperature=settings["teacher_temperature"],
        )
        vision = self.backbone.vision_encoder
        image_inputs = self._image_inputs(x)
        teacher = self.teacher(image_inputs, training=False)
        teacher_global = ops.stop_gradient(self.teacher_global_head(teacher["pooled"]))
        teacher_patches = ops.stop_gradient(self.teacher_patch_head(teacher["patch_features"]))

        # Local-to-global: every local crop of an image against its global view.
        local_images = x["local_images"]
        views = local_images.shape[1]
        local_pooled, _ = encode_tokens(vision, embed_local_views(vision, local_images))
        student_global = ops.reshape(
            self.global_head(local_pooled), (-1, views, settings["num_prototypes"])
        )
        image_weights = None if example_weights is None else example_weights[:, None]
        distillation = losses.distillation_loss(
            student_global, teacher_global[:, None], self.global_center,
            weights=image_weights, **temperatures,
        )

        # Masked prediction: masked global view against the unmasked teacher.
        drop = ops.cast(x["patch_drop_mask"], "float32")
        tokens, key_mask = embed_global_view(
            vision, image_inputs, self.mask_token, x["patch_drop_mask"]
        )
        _, patch_features = encode_tokens(vision, tokens, key_mask)
        patch_weights = drop if image_weights is None else drop * image_weights
        masked = losses.distillation_loss(
            self.patch_head(patch_features), teacher_patches, self.patch_center,
            weights=patch_weights, **temperatures,
        )

        real = ops.ones_like(drop) if key_mask is None else ops.cast(key_mask, "float32")
        if image_weights is not None:
            real = real * image_weights
        momentum = settings["center_momentum"]
        global_center = losses.update_center(
            self.global_center, teacher_global, momentum,
            weights=example_weights,
        )
        patch_center = losses.update_center(self.patch_center, teacher_patches, momentum, weights=real)
        return distillation, masked, global_center, patch_center

    def _locca_loss(self, x, y_pred, example_weights=None):
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
                x[f"{task}_weights"]
                if example_weights is None
                else ops.convert_to_tensor(x[f"{task}_weights"]) * example_weights[:, None],
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


def _switch_on_step(start, total_steps):
    """A fraction of `total_steps` or an int step → the int step."""
    if isinstance(start, float) and 0.0 <= start <= 1.0:
        if total_steps is None:
            if start == 0.0:
                return 0
            raise ValueError(
                f"`self_supervised_start={start}` is a fraction of training: pass "
                "`total_steps` too, or give the switch-on step as an int."
            )
        return int(round(start * total_steps))
    if isinstance(start, int) and start >= 0:
        return start
    raise ValueError(
        f"`self_supervised_start` must be a fraction in [0, 1] or a step ≥ 0; got {start!r}."
    )


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

