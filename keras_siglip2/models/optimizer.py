"""The paper's optimiser (SPEC §3): AdamW with decoupled weight decay on kernels,
global-norm clipping and a warmup + cosine schedule."""

import keras
from keras import ops


def paper_optimizer(model, learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm):
    """AdamW as in the paper: decay only kernels, decay follows the schedule.

    Linear warmup over `warmup_steps`, then cosine decay to 0 at `total_steps`
    (constant after warmup when `total_steps` is None). Keras' AdamW decays by
    `weight_decay · lr(t)`; dividing by the base rate makes the decay
    `weight_decay · lr(t)/lr(0)`: decoupled from the learning rate's value.
    """
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
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay / learning_rate if learning_rate else 0.0,
        global_clipnorm=global_clipnorm,
    )
    not_kernels = [v for v in model.trainable_variables if not is_kernel(v)]
    optimizer.exclude_from_weight_decay(var_list=not_kernels)
    return optimizer


def is_kernel(variable):
    """Whether weight decay applies to `variable` (kernels only)."""
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
