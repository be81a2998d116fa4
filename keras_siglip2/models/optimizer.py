"""The paper's optimiser (SPEC §3): AdamW with decoupled weight decay on kernels,
global-norm clipping and a warmup + cosine schedule."""

import math
import numbers

import keras
from keras import ops

# `SigLIP2.compile(recipe=...)` defaults; explicit arguments override them.
RECIPES = {
    # SPEC §3: Adam, lr 1e-3, decoupled weight decay 1e-4 on kernels.
    "pretraining": dict(learning_rate=1e-3, weight_decay=1e-4),
    # The paper's last (ACID distillation) stage, and what adapting a released
    # checkpoint needs: a small rate and no decay towards zero.
    "fine_tuning": dict(learning_rate=1e-5, weight_decay=0.0),
}


def recipe_settings(recipe, learning_rate=None, weight_decay=None):
    """`(learning_rate, weight_decay)` of `recipe`, each overridden when given."""
    if recipe not in RECIPES:
        raise ValueError(f"`recipe` must be one of {sorted(RECIPES)}; got {recipe!r}.")
    defaults = RECIPES[recipe]
    return (
        defaults["learning_rate"] if learning_rate is None else learning_rate,
        defaults["weight_decay"] if weight_decay is None else weight_decay,
    )


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
    adamw = FusedAdamW if keras.backend.backend() == "torch" else keras.optimizers.AdamW
    optimizer = adamw(
        learning_rate=schedule,
        weight_decay=weight_decay / learning_rate if learning_rate else 0.0,
        global_clipnorm=global_clipnorm,
    )
    not_kernels = [v for v in model.trainable_variables if not is_kernel(v)]
    optimizer.exclude_from_weight_decay(var_list=not_kernels)
    return optimizer


def check_training_arguments(
    learning_rate, weight_decay, warmup_steps, total_steps, global_clipnorm, loss_weights,
    chunk_size, curation_fraction,
):
    """`SigLIP2.compile`'s arguments: a `TypeError` for a wrong type, a
    `ValueError` for a value that would train wrongly (a negative rate ascends,
    `total_steps < 1` pins the rate at 0), each naming the argument."""

    def number(name, value, low, allow_low=True, allow_none=False):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"`{name}` must be a number; got {type(value).__name__} ({value!r:.40}).")
        if not math.isfinite(value) or value < low or (value == low and not allow_low):
            bound = f"≥ {low:g}" if allow_low else f"> {low:g}"
            raise ValueError(f"`{name}` must be a finite number {bound}; got {value!r}.")

    def integer(name, value, low, allow_none=False):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"`{name}` must be an int; got {type(value).__name__} ({value!r:.40}).")
        if value < low:
            raise ValueError(f"`{name}` must be ≥ {low}; got {value!r}.")

    number("learning_rate", learning_rate, 0.0, allow_low=False)
    number("weight_decay", weight_decay, 0.0)
    number("global_clipnorm", global_clipnorm, 0.0, allow_low=False, allow_none=True)
    number("curation_fraction", curation_fraction, 0.0, allow_low=False)
    integer("warmup_steps", warmup_steps, 0)
    integer("total_steps", total_steps, 1, allow_none=True)
    integer("chunk_size", chunk_size, 1)
    if total_steps is not None and warmup_steps > total_steps:
        raise ValueError(
            f"`warmup_steps` ({warmup_steps}) must not exceed `total_steps` ({total_steps})."
        )
    if loss_weights is not None and not isinstance(loss_weights, dict):
        raise TypeError(
            f"`loss_weights` must be a dict of loss name → weight; got {type(loss_weights).__name__}."
        )
    for name, weight in (loss_weights or {}).items():
        number(f"loss_weights[{name!r}]", weight, 0.0)


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


def _torch_compiling():
    import torch

    return torch.compiler.is_compiling()


@keras.saving.register_keras_serializable(package="keras_siglip2")
class FusedAdamW(keras.optimizers.AdamW):
    """Keras' AdamW (same arguments, variables and update) whose PyTorch step
    is one `torch._fused_adamw_` call per weight-decay group (what
    `torch.optim.AdamW(fused=True)` runs): each weight, gradient and moment is
    read and written once, where Keras' `_foreach` update makes a temporary
    per operation. Global-norm clipping divides the gradients inside that
    kernel (its `grad_scale`) instead of scaling every gradient first.

    Keras adds ε to √v before the bias correction, PyTorch after; the kernel
    gets ε / √(1 − β₂ᵗ) so the update is Keras' (matching the other backends).
    Other backends, EMA, gradient accumulation, AMSGrad and per-variable
    clipping take Keras' own path (`paper_optimizer` uses it on PyTorch only),
    and so does a step under `torch.compile` (`jit_compile=True`), which
    cannot trace the fused kernel's in-place update of the variables.
    """

    def _backend_apply_gradients(self, grads, trainable_variables):
        if (keras.backend.backend() != "torch" or self.use_ema or self.amsgrad
                or self.gradient_accumulation_steps or self.clipnorm or self.clipvalue
                or _torch_compiling()):
            return super()._backend_apply_gradients(grads, trainable_variables)
        import torch

        with torch.no_grad():
            step = int(self.iterations.value) + 1
            learning_rate = float(self._get_current_learning_rate())
            grad_scale = None
            if self.global_clipnorm:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                grad_scale = torch.clamp(norm / self.global_clipnorm, min=1.0)
            for decayed in (True, False):
                chosen = [(g, v) for g, v in zip(grads, trainable_variables)
                          if bool(self.weight_decay and self._use_weight_decay(v)) == decayed]
                if not chosen:
                    continue
                indices = [self._get_variable_index(v) for _, v in chosen]
                state_step = torch.tensor(float(step), device=grads[0].device)
                torch._fused_adamw_(
                    [v.value for _, v in chosen],
                    [g.contiguous() for g, _ in chosen],
                    [self._momentums[i].value for i in indices],
                    [self._velocities[i].value for i in indices],
                    [],
                    [state_step] * len(chosen),
                    lr=learning_rate,
                    beta1=self.beta_1,
                    beta2=self.beta_2,
                    weight_decay=self.weight_decay if decayed else 0.0,
                    eps=self.epsilon / math.sqrt(1.0 - self.beta_2**step),
                    amsgrad=False,
                    maximize=False,
                    grad_scale=grad_scale,
                    found_inf=None,
                )
