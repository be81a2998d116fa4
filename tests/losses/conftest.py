"""Backend-neutral value-and-gradient for the loss tests."""

import keras
import numpy as np
import pytest


def _value_and_grad(fn, *args):
    """Value and gradients of scalar `fn` w.r.t. every NumPy argument, as NumPy."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
    elif backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(variables)
            value = fn(*variables)
        grads = tape.gradient(value, variables)
    elif backend == "torch":
        import torch

        variables = [torch.tensor(a, requires_grad=True) for a in args]
        value = fn(*variables)
        value.backward()
        grads = [v.grad for v in variables]
        value = value.detach()
    else:
        pytest.skip(f"no gradient helper for backend {backend}")
    to_numpy = keras.ops.convert_to_numpy
    # TF and torch report "no path to this input" as None; that is a zero gradient.
    grads = [np.zeros_like(a) if g is None else to_numpy(g) for a, g in zip(args, grads)]
    return to_numpy(value), grads


@pytest.fixture
def value_and_grad():
    return _value_and_grad
