"""SigLIP2: backbone + preprocessor + training heads, trained with `fit`."""


import json
from pathlib import Path

import keras
from keras import ops
from safetensors import safe_open
from safetensors.numpy import save_file

from keras_siglip2 import losses
from keras_siglip2.layers.similarity import l2_normalize
from keras_siglip2.layers.transformer import check_remat
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.heads import LocCaDecoder, patch_centres
from keras_siglip2.models.inference import InferenceMethods
from keras_siglip2.models.metrics import LatestValue, loss_trackers
from keras_siglip2.models.optimizer import (
    check_training_arguments,
    paper_optimizer,
    recipe_settings,
)
from keras_siglip2.models.self_supervised import (
    SelfSupervisedTraining,
    self_supervised_settings,
    size_factor,
    switch_on_step,
)

DEFAULT_LOSS_WEIGHTS = {"sigmoid": 1.0, "locca": 1.0}


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2(InferenceMethods, SelfSupervisedTraining, keras.Model):
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

    `remat`: rematerialise the transformer blocks of both towers and the
    decoder in training, trading compute for activation memory: None (keep
    everything), "mlp" (recompute each MLP's hidden layer) or "block" (keep
    only each block's input). For the five-loss B/16@224 step: what autodiff
    keeps falls to 54% ("mlp") or 6% ("block") for 9% or 28% more FLOPs
    (`benchmarks/RESULTS.md` §8). Not with self-supervision on TensorFlow.
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
        remat=None,
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
            self.build_self_supervised()
        self.remat = None
        self.set_remat(remat)
        for name, tracker in loss_trackers(locca, self.self_supervised).items():
            setattr(self, f"{name}_loss_tracker", tracker)
        self.temperature_tracker = LatestValue(name="temperature")
        self.bias_tracker = LatestValue(name="bias")
        self.loss_weights_ = self.default_loss_weights()
        self.chunk_size = 256
        self.sigmoid_loss_kind = "auto"
        self.self_supervised_start = 0
        self.curation = None
        self._compile_arguments = None  # what `compile` was given, for .keras files
        self.built = True  # every sub-layer is built above

    def set_remat(self, mode):
        """Rematerialise the blocks of both towers and the decoder in training:
        None, "mlp" or "block" (see the class docstring). The EMA teacher runs
        without gradients and is left alone."""
        self.remat = check_remat(mode)
        self.train_function = None  # one traced before would keep the old setting
        towers = self.backbone.vision_encoder, self.backbone.text_encoder
        blocks = [block for tower in towers for block in tower.encoder_blocks]
        if self.decoder is not None:
            blocks += self.decoder.blocks
        for block in blocks:
            block.remat = mode

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
            "remat": self.remat,
        }

    TASK_CONFIG_FILE = "siglip2_task.json"
    TASK_WEIGHTS_FILE = "siglip2_task.safetensors"

    def _head_variables(self):
        """Variables of the training heads (not of the backbone), by path
        within the model: the model's own variables (the mask token, the
        centres, the step counter) without the model's name, which Keras
        makes unique per process (`sig_lip2`, `sig_lip2_1`, …)."""
        backbone = {id(v) for v in self.backbone.weights}
        prefix = f"{self.name}/"
        return {
            v.path[len(prefix):] if v.path.startswith(prefix) else v.path: v
            for v in self.weights
            if id(v) not in backbone
        }

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
    def from_preset(cls, preset, load_weights=True, dtype=None, text_sequence_length=None,
                    **kwargs):
        """Load a preset: a released name/alias (`"so400m"`, `"b16-naflex"`), an
        `hf://` or `kaggle://` handle, a local directory (ours, keras-hub,
        Hugging Face) or a big_vision `.npz` (see `keras_siglip2.presets`).

        Training heads saved with the preset are restored; released
        checkpoints have none (pass `locca=True` to attach a fresh decoder).
        `text_sequence_length`: take longer texts than the checkpoint was
        trained with (e.g. 128 or 256 instead of 64): the text positions are
        extended (`SigLIP2Backbone.with_text_length`) and the tokenizer pads
        to the new length; an extension beyond the released models, to be
        fine-tuned.
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
        if text_sequence_length is not None:
            if task.get("locca", True) and task_file:
                raise ValueError(
                    "`text_sequence_length` extends the towers; this preset's LocCa "
                    "decoder was trained at the old length. Load it with `locca=False`."
                )
            backbone = backbone.with_text_length(text_sequence_length)
            if preprocessor is not None and preprocessor.tokenizer is not None:
                preprocessor.tokenizer.sequence_length = int(text_sequence_length)
        model = cls(backbone, preprocessor, **task)
        weights_file = located.file(cls.TASK_WEIGHTS_FILE, required=False)
        if load_weights and weights_file:
            model._load_head_weights(weights_file)
        return model

    def _load_head_weights(self, path):
        """Assign every training-head variable from `path` (names of earlier
        versions upgraded); a variable the file lacks is an error."""
        from keras_siglip2.presets.legacy import upgrade_variable_path
        from keras_siglip2.presets.weights import assign

        variables = self._head_variables()
        own = {name for name in variables if "/" not in name}
        with safe_open(path, framework="numpy") as f:
            stored = {}
            for name in f.keys():
                key = upgrade_variable_path(name)
                if key.count("/") == 1 and key.split("/")[1] in own:
                    key = key.split("/")[1]  # saved with the model's name in front
                stored[key] = name
            missing = sorted(set(variables) - set(stored))
            if missing:
                raise ValueError(
                    f"{path} has no values for {len(missing)} training-head variables "
                    f"(e.g. {missing[:3]}): it does not match {self.TASK_CONFIG_FILE} "
                    "beside it. Save the preset again, or load it with `locca=False` "
                    "and no self-supervision to use the backbone alone."
                )
            for name, variable in variables.items():
                assign(variable, f.get_tensor(stored[name]), source=f"{path}:{stored[name]}")

    # ----------------------------------------------------------------- forward
    def _image_inputs(self, inputs):
        return {name: inputs[name] for name in self.backbone.vision_encoder.input}

    def call(self, inputs, training=False):
        """Batch dict → `image_embeddings`, `patch_features`, and with
        `token_ids` also `text_embeddings`, `logits`; with LocCa inputs
        `decoder_hidden (B, 3, T, D)` (captioning, referring, grounded)."""
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
                inputs, vision["patch_features"], image_inputs.get("patch_mask"), training
            )
        return outputs

    def _decode_tasks(self, inputs, patch_features, patch_mask, training=False):
        """One decoder pass over the three LocCa tasks, stacked per image →
        `(B, 3, T, D)`: the tasks share the image tokens (projected once)."""
        tasks = LocCaDecoder.TASKS
        tokens = ops.stack([inputs[f"{task}_inputs"] for task in tasks], axis=1)  # (B, 3, T)
        task_ids = ops.zeros_like(tokens[:, :, 0], "int32") + ops.arange(len(tasks), dtype="int32")
        parallel = ops.cast(inputs["captioning_parallel"], "bool")[:, None]
        parallel = ops.logical_and(parallel, ops.equal(task_ids, 0))  # captioning only
        positions = self.image_positions(inputs, patch_features)
        return self.decoder(
            tokens, patch_features, patch_mask, task_ids, parallel, positions, training=training
        )

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
        learning_rate=None,
        weight_decay=None,
        recipe="pretraining",
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

        `recipe`: "pretraining" (the above) or "fine_tuning" (lr 1e-5, no
            weight decay: the paper's last stage, for adapting a checkpoint);
            `learning_rate` and `weight_decay` override the recipe's.
        Only trainable weights are trained and decayed and get optimizer
        state: freeze a tower first (`model.backbone.text_encoder.trainable =
        False`, LiT) or call `model.backbone.enable_lora(rank)`.

        `loss_weights`: dict overriding `default_loss_weights()` (keys
            `sigmoid`, `locca`, and with self-supervision `self_distillation`,
            `masked_prediction`).
        `chunk_size`: tokens per chunk of the decoder's vocabulary cross entropy.
        `sigmoid_loss`: "auto" (the ring loss under a multi-device JAX
            `keras.distribution`, else dense), "dense", "chunked" or "ring";
            see `keras_siglip2.losses.global_sigmoid_loss`.
        `self_supervised_start`: when self-distillation and masked prediction
            switch on: a fraction of `total_steps` (default 0.8, as the paper)
            or an int step. The teacher copies the student until then.
        `curation_teacher`: opt-in active data curation (ACID): a frozen
            `SigLIP2`/`SigLIP2Backbone` taking the same inputs; each batch is
            a super-batch of which the `curation_fraction` most learnable
            examples (learner − teacher per-example sigmoid loss) are trained on.
        """
        arguments = dict(
            optimizer=optimizer, learning_rate=learning_rate, weight_decay=weight_decay,
            recipe=recipe, warmup_steps=warmup_steps, total_steps=total_steps,
            global_clipnorm=global_clipnorm, loss_weights=loss_weights, chunk_size=chunk_size,
            sigmoid_loss=sigmoid_loss, self_supervised_start=self_supervised_start,
            curation_fraction=curation_fraction, **kwargs,
        )
        learning_rate, weight_decay = recipe_settings(recipe, learning_rate, weight_decay)
        check_training_arguments(
            learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm,
            loss_weights, chunk_size, curation_fraction,
        )
        self._check_trainable()
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
        losses.resolve_sigmoid_loss(sigmoid_loss)  # rejects unknown names now
        self.sigmoid_loss_kind = sigmoid_loss
        if self.self_supervised is not None:
            self.self_supervised_start = switch_on_step(self_supervised_start, total_steps)
        self.curation = None
        if curation_teacher is not None:
            if not 0.0 < curation_fraction <= 1.0:
                raise ValueError(f"`curation_fraction` must be in (0, 1]; got {curation_fraction}.")
            teacher = getattr(curation_teacher, "backbone", curation_teacher)
            teacher.trainable = False
            self.curation = {"teacher": teacher, "fraction": float(curation_fraction)}
        super().compile(optimizer=optimizer, **kwargs)
        self._compile_arguments = arguments

    def get_compile_config(self):
        """`compile`'s arguments, for `.keras` files: `keras.saving.load_model`
        compiles the restored model with them (`compile_from_config`), and
        Keras then restores the optimizer's state from the same file. Not for
        a model compiled with a `curation_teacher`, a second model that the
        file cannot hold: that is a `ValueError`."""
        if not self.compiled or self._compile_arguments is None:
            return {}
        if self.curation is not None:
            raise ValueError(
                "A SigLIP2 compiled with a `curation_teacher` cannot be saved to a "
                ".keras file: the teacher is a second model, which the file does not "
                "hold. Save the weights (`save_weights`, `save_to_preset`), or call "
                "`compile()` without the teacher before saving."
            )
        return {
            "arguments": keras.saving.serialize_keras_object(dict(self._compile_arguments)),
            "optimizer_built": self.optimizer.built,
        }

    def compile_from_config(self, config):
        """Compile with the arguments `get_compile_config` saved, and build the
        optimizer if it was built (trained), so that its saved state loads."""
        self.compile(**keras.saving.deserialize_keras_object(config["arguments"]))
        if config["optimizer_built"]:
            self.optimizer.build(self.trainable_variables)

    def _check_trainable(self):
        """Refuse what cannot train: nothing trainable, or self-supervision
        (whose student is the image tower) with that tower frozen or LoRA'd."""
        if not self.trainable_variables:
            raise ValueError(
                "Every weight is frozen: nothing would train. Unfreeze a tower "
                "(`trainable = True`) or call `backbone.enable_lora(rank)`."
            )
        if self.self_supervised is None:
            return
        vision = self.backbone.vision_encoder
        frozen = [v.path for v in vision.weights if not v.trainable and "lora_kernel" not in v.path]
        if frozen:
            raise ValueError(
                "Self-distillation and masked prediction train the image tower (the "
                f"EMA teacher follows it), but {len(frozen)} of its weights are frozen "
                f"(e.g. {frozen[0]}, frozen or under LoRA). Build the model without "
                "self-supervision (`self_supervised=None`) to fine-tune a frozen or "
                "LoRA-adapted image tower."
            )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        head = self.backbone.logit_head
        image_embeddings, text_embeddings = y_pred["image_embeddings"], y_pred["text_embeddings"]
        example_weights = None
        if self.curation is not None:
            selected, example_weights = self._curate(x, image_embeddings, text_embeddings)
            image_embeddings = ops.take(image_embeddings, selected, axis=0)
            text_embeddings = ops.take(text_embeddings, selected, axis=0)
        sigmoid = losses.global_sigmoid_loss(
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
            total = total + self.self_supervised_loss(x, example_weights, training)
        return losses.scale_loss_for_replicas(total)

    # ------------------------------------------------------------- curation
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

    def _locca_loss(self, x, y_pred, example_weights=None):
        """Token-mean cross entropy over all three tasks' target tokens, in one
        pass over the vocabulary; the captioning and localisation parts are
        logged separately."""
        tasks = LocCaDecoder.TASKS
        hidden = y_pred["decoder_hidden"]  # (B, 3, T, D)
        targets = ops.stack([x[f"{task}_targets"] for task in tasks], axis=1)
        weights = ops.stack(
            [ops.cast(x[f"{task}_weights"], "float32") for task in tasks], axis=1
        )
        if example_weights is not None:
            weights = weights * example_weights[:, None, None]
        # Two token groups: captioning (task 0) and localisation (tasks 1, 2).
        captioning = ops.convert_to_tensor([1.0, 0.0, 0.0])[None, :, None]
        groups = ops.stack([weights * captioning, weights * (1.0 - captioning)], axis=-1)
        arguments = (
            hidden,
            self.decoder.token_embeddings,  # the tied output projection (V, D)
            ops.convert_to_tensor(self.decoder.output_bias),
            targets,
            groups,
        )
        # The chunked loop needs static shapes; Keras' symbolic shape pass (and
        # TF graphs of unknown batch size) get the dense form, same value.
        if None not in hidden.shape:
            totals, counts = losses.chunked_cross_entropy_sums(
                *arguments, chunk_size=self.chunk_size
            )
        else:
            totals, counts = losses.cross_entropy_sums(*arguments)

        def token_mean(total, count):
            return total / ops.maximum(count, 1.0)

        self.captioning_loss_tracker.update_state(token_mean(totals[0], counts[0]))
        self.localization_loss_tracker.update_state(token_mean(totals[1], counts[1]))
        return token_mean(ops.sum(totals), ops.sum(counts))
