"""Assigning converted arrays to Keras variables with clear shape errors."""

import math

import keras
import numpy as np

_CHECK_CHUNK_BYTES = 64 * 1024 * 1024


def _all_finite(array):
    """`np.isfinite(array).all()` in slices, without a full-size temporary."""
    if array.ndim == 0 or array.nbytes <= _CHECK_CHUNK_BYTES:
        return bool(np.isfinite(array).all())
    step = max(1, array.shape[0] * _CHECK_CHUNK_BYTES // array.nbytes)
    return all(np.isfinite(array[i : i + step]).all() for i in range(0, array.shape[0], step))


def assign(variable, array, source):
    """Copy `array` into `variable`; a shape mismatch names both sides."""
    array = np.asarray(array)
    if tuple(array.shape) != tuple(variable.shape):
        raise ValueError(
            f"Checkpoint tensor {source!r} has shape {tuple(array.shape)} but the "
            f"model variable {variable.path!r} expects {tuple(variable.shape)}. "
            "The checkpoint does not match this architecture/config."
        )
    if array.dtype.kind == "f" and not _all_finite(array):
        raise ValueError(f"Checkpoint tensor {source!r} holds NaN or infinite values.")
    if array.dtype != variable.dtype:
        array = array.astype(variable.dtype)
    variable.assign(array)


def check_finite(model, checkpoint="the checkpoint"):
    """Raise if a floating-point weight of `model` holds NaN or infinity (for
    formats whose weights Keras loads itself, without `assign`)."""
    for variable in model.weights:
        if not keras.backend.is_float_dtype(variable.dtype):
            continue
        if not _all_finite(np.asarray(keras.ops.convert_to_numpy(variable))):
            raise ValueError(
                f"{checkpoint}: the weights hold NaN or infinite values in "
                f"{variable.path!r}. The checkpoint is corrupt or was saved after "
                "training diverged; use an earlier one."
            )


def build_without_values(build):
    """The model `build()` makes, with shaped variables but no values yet.

    On JAX it is built under `jax.eval_shape`: no initialiser runs and
    nothing is allocated, so the model's memory grows only as a checkpoint's
    tensors are assigned; its variables hold abstract values until then
    (`check_assigned`). Thread-safe: nothing global changes. TensorFlow and
    torch assign in place, so there the model is built as usual.
    """
    if keras.backend.backend() != "jax":
        return build()
    import jax

    built = []
    jax.eval_shape(lambda: built.append(build()))
    return built[0]


def check_assigned(model, checkpoint="the checkpoint"):
    """Raise if a variable of a `build_without_values` model has no value."""
    if keras.backend.backend() != "jax":
        return
    import jax

    unset = [v.path for v in model.variables if isinstance(v.value, jax.core.Tracer)]
    if unset:
        raise ValueError(
            f"{checkpoint} gave no value to {len(unset)} model variables, e.g. {unset[:3]}."
        )


def load_entries(backbone, entries, get_tensor, checkpoint="the checkpoint"):
    """Stream checkpoint tensors into `backbone`, one tensor at a time.

    `entries` is a list of `(variable, tensor name, transform or None)`;
    `get_tensor(name)` returns a NumPy array (or raises `KeyError`). Each
    tensor is read, converted and assigned before the next is read, so
    converting holds one model copy plus one tensor. Every weight of
    `backbone` must be covered: a variable that no entry fills would keep
    its initial value (or none, see `build_without_values`), so that is an
    error, not a silent default.
    """
    # Largest tensors first (the sort is stable): a checkpoint whose big
    # tables do not fit the architecture fails before the rest is read.
    entries = sorted(entries, key=lambda entry: -math.prod(entry[0].shape))
    covered = {id(variable) for variable, _, _ in entries}
    missing = [w.path for w in backbone.weights if id(w) not in covered]
    if missing:
        raise ValueError(
            f"Internal error: no checkpoint tensor is mapped to {len(missing)} model "
            f"variables, e.g. {missing[:3]}."
        )
    for variable, name, transform in entries:
        try:
            array = get_tensor(name)
        except KeyError:
            raise ValueError(
                f"{checkpoint} has no tensor {name!r} (needed for {variable.path!r}). "
                "It is not a complete SigLIP checkpoint for this architecture."
            ) from None
        array = np.asarray(array)
        if transform is not None:
            try:
                array = transform(array)
            except ValueError as error:
                raise ValueError(
                    f"Checkpoint tensor {name!r} has an unexpected shape: {error}. "
                    "The checkpoint does not match this architecture/config."
                ) from error
        assign(variable, array, source=name)
        del array
    check_assigned(backbone, checkpoint)
