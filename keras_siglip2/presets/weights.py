"""Assigning converted arrays to Keras variables with clear shape errors."""

import numpy as np


def assign(variable, array, source):
    """Copy `array` into `variable`; a shape mismatch names both sides."""
    array = np.asarray(array)
    if tuple(array.shape) != tuple(variable.shape):
        raise ValueError(
            f"Checkpoint tensor {source!r} has shape {tuple(array.shape)} but the "
            f"model variable {variable.path!r} expects {tuple(variable.shape)}. "
            "The checkpoint does not match this architecture/config."
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"Checkpoint tensor {source!r} holds NaN or infinite values.")
    variable.assign(array.astype(variable.dtype) if array.dtype != variable.dtype else array)
