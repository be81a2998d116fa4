"""Self-distillation (SILC) and masked prediction (TIPS): settings, heads,
teacher, and the two losses of `SigLIP2` (`SelfSupervisedTraining`).

The paper gives the recipe but not the sizes; our choices and their sources
are listed in `docs/self-supervised.md`. In short:

- `PrototypeHead` (DINO): MLP (GELU) → L2-normalised bottleneck → cosine
  scores against K L2-normalised prototypes.
- The student runs its own image tower (`embed_crops` / `embed` → `encode`
  → `pool`, the tower's public steps) on (a) 8 low-resolution local crops and
  (b) the global view with half of the embedded patches replaced by a learned
  mask token. Only the masked patches are scored, so only they go through
  the patch heads, the student's and the teacher's.
- The teacher is a frozen copy of the image tower plus both heads, moved
  towards the student by an exponential moving average inside the training
  step (`ema_update`).
"""

import math

import keras
from keras import ops
from keras.src import backend as keras_backend

from keras_siglip2 import losses
from keras_siglip2.layers.projections import Dense, project
from keras_siglip2.layers.similarity import NORM_EPSILON, l2_normalize

# The paper leaves these open; the values and their sources are in
# docs/self-supervised.md.
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


def switch_on_step(start, total_steps):
    """A fraction of `total_steps` or an int step → the int step at which the
    self-supervised losses switch on."""
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
            layer = Dense(width, dtype=self.dtype_policy, name=f"dense_{i}")
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
        # Each prototype (a column) normalised in place: no transposed copy.
        prototypes = ops.cast(self.prototypes, "float32")
        prototypes = prototypes / (ops.norm(prototypes, axis=0, keepdims=True) + NORM_EPSILON)
        return project(x, prototypes)  # flattened: see layers/projections.py

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


def ema_update(pairs, momentum, active):
    """For each `(teacher, student)` variable pair: `teacher ← m·teacher +
    (1 − m)·student` when `active`, else `teacher ← student` (so the teacher
    starts as the student at switch-on). On eager PyTorch one in-place
    `torch._foreach_lerp_` over all pairs (`_torch_ema_update`)."""
    pairs = list(pairs)
    if _lerps_in_place(pairs, momentum):
        return _torch_ema_update(pairs, momentum, active)
    active = ops.cast(active, "bool")
    for teacher, student in pairs:
        value = ops.cast(ops.stop_gradient(student), teacher.dtype)
        averaged = momentum * teacher + (1.0 - momentum) * value
        teacher.assign(ops.where(active, averaged, value))


def _lerps_in_place(pairs, momentum):
    """Whether `ema_update` can run as `_torch_ema_update`: eager PyTorch (not
    while `torch.compile` traces), a Python momentum, each pair of one dtype."""
    if keras.backend.backend() != "torch" or not isinstance(momentum, (int, float)):
        return False
    import torch

    return not torch.compiler.is_compiling() and all(t.dtype == s.dtype for t, s in pairs)


def _torch_ema_update(pairs, momentum, active):
    """`ema_update` as one `torch._foreach_lerp_`: teacher += w·(student −
    teacher), w = 1 − m, or w = 1 when not active (PyTorch's lerp then gives
    the student exactly). Each variable is read and written once, in one
    multi-tensor launch, where the `keras.ops` form makes a temporary per
    operation, six operations per variable."""
    import torch

    # The stored values, whatever autocast scope the caller is in: an
    # autocast copy would take the update and drop it.
    with keras_backend.AutocastScope(None):
        teachers = [t.value for t, _ in pairs]
        students = [s.value for _, s in pairs]
    with torch.no_grad():
        torch._foreach_lerp_(teachers, students, 1.0 - momentum if bool(active) else 1.0)


def size_factor(vision_width):
    """The paper's weight factor of losses 4 and 5 by model size (SPEC §3):
    B 0.25, L 0.5, So400m 1.0, g 0.5; 1.0 for other widths."""
    return {768: 0.25, 1024: 0.5, 1152: 1.0, 1536: 0.5}.get(vision_width, 1.0)


def masked_positions(drop_mask, mask_ratio):
    """The positions of the masked patches. `drop_mask (B, N)` has at most
    K = ⌊mask_ratio · N⌋ True per row (what the pipeline makes) → `index
    (B, K)` int32 (the masked positions first, then unmasked filler) and
    `weights (B, K)` float32 (1 where masked, 0 for filler). With N unknown
    when traced, K = N (every position, weighted by the mask)."""
    drop = ops.cast(drop_mask, "float32")
    num_patches = drop_mask.shape[1]
    if num_patches is None:
        index = ops.zeros_like(drop, "int32") + ops.arange(ops.shape(drop)[1], dtype="int32")
        return index, drop
    count = max(1, int(math.floor(mask_ratio * num_patches)))
    weights, index = ops.top_k(drop, count, sorted=True)
    return ops.cast(index, "int32"), weights


def take_positions(tokens, index):
    """`tokens (B, N, D)` at `index (B, K)` → `(B, K, D)`."""
    return ops.take_along_axis(tokens, ops.cast(index, "int32")[..., None], axis=1)


class SelfSupervisedTraining:
    """The self-supervised part of `SigLIP2` (a mixin): student heads, mask
    token, EMA teacher, centres, the step counter, and the two losses.

    Expects `self.backbone`, `self.self_supervised` (the settings) and
    `self.loss_weights_`; `build_self_supervised` creates the rest.
    """

    # The switch-on as a Python bool while a train function is traced, None
    # when the graph decides (`ops.cond`): see `make_train_function`.
    static_switch = None

    def build_self_supervised(self):
        """Student heads, mask token, EMA teacher (tower + heads) and centres."""
        from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder

        settings = self.self_supervised
        vision = self.backbone.vision_encoder
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

    def switches_in_python(self):
        """Whether the switch-on is decided in Python: on TensorFlow with
        `remat`, whose `tf.recompute_grad` cannot be differentiated inside the
        `cond` that the graph would switch with."""
        return (
            keras.backend.backend() == "tensorflow"
            and self.self_supervised is not None
            and self.remat is not None
        )

    def make_train_function(self, force=False):
        """Keras' train function, or where `switches_in_python`: two of them,
        one traced with the self-supervised losses off and one with them on,
        the counter picking one in Python before each call. With
        `steps_per_execution` k the losses switch on at the first call that
        starts at or after the switch-on step (up to k − 1 steps late)."""
        if not self.switches_in_python():
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        make_keras_function = super().make_train_function
        sides = {}

        def train_function(data):
            active = bool(ops.convert_to_numpy(self.training_step) >= self.self_supervised_start)
            if active not in sides:
                make_keras_function(force=True)  # sets, does not return, self.train_function
                sides[active], self.train_function = self.train_function, train_function
            self.static_switch = active  # read while the side is traced
            try:
                return sides[active](data)
            finally:
                self.static_switch = None

        self.train_function = train_function
        return train_function

    def self_supervised_loss(self, x, example_weights, training):
        """Weighted self-distillation + masked prediction. Before the switch-on
        step both are exactly 0 and are not computed (`ops.cond`, or a Python
        branch where `switches_in_python`); in training
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

        if self.static_switch is None:
            distillation, masked, global_center, patch_center = ops.cond(
                active, lambda: self._self_supervised_terms(x, example_weights), switched_off
            )
        else:
            active = self.static_switch
            terms = self._self_supervised_terms(x, example_weights) if active else switched_off()
            distillation, masked, global_center, patch_center = terms
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
        image_inputs = {name: x[name] for name in vision.input}
        image_weights = None if example_weights is None else example_weights[:, None]

        # Only the masked patches are scored: gather them before the heads.
        drop_mask = x["patch_drop_mask"]
        index, drop = masked_positions(drop_mask, settings["mask_ratio"])
        patch_weights = drop if image_weights is None else drop * image_weights

        teacher = self.teacher(image_inputs, training=False)
        teacher_global = ops.stop_gradient(self.teacher_global_head(teacher["pooled"]))
        teacher_patches = ops.stop_gradient(
            self.teacher_patch_head(take_positions(teacher["patch_features"], index))
        )

        # Local-to-global: every local crop of an image against its global view.
        local_images = x["local_images"]
        views, size = local_images.shape[1], local_images.shape[2]
        crops = ops.reshape(local_images, (-1, size, size, local_images.shape[-1]))
        local_pooled = vision.pool(vision.encode(vision.embed_crops(crops)))
        student_global = ops.reshape(
            self.global_head(local_pooled), (-1, views, settings["num_prototypes"])
        )
        distillation = losses.distillation_loss(
            student_global, teacher_global[:, None], self.global_center,
            weights=image_weights, **temperatures,
        )

        # Masked prediction: the masked global view against the unmasked teacher.
        tokens, key_mask = vision.embed(image_inputs, self.mask_token, drop_mask)
        student_patches = take_positions(vision.encode(tokens, key_mask), index)
        masked = losses.distillation_loss(
            self.patch_head(student_patches), teacher_patches, self.patch_center,
            weights=patch_weights, **temperatures,
        )

        momentum = settings["center_momentum"]
        global_center = losses.update_center(
            self.global_center, teacher_global, momentum, weights=example_weights,
        )
        patch_center = losses.update_center(
            self.patch_center, teacher_patches, momentum, weights=patch_weights
        )
        return distillation, masked, global_center, patch_center
