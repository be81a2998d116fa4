"""Calling a built sub-layer from its parent's `call` without Keras'
`Layer.__call__`, where that call would only pass the arguments through.

On PyTorch every operator runs eagerly, so Keras' `Layer.__call__` (argument
conversion, signature binding, `training` resolution, name and autocast
scopes, torch module hooks) runs on every call: about 0.1 ms of Python, where
`torch.nn.Module.__call__` takes 1 µs. A transformer block calls ten
sub-layers (two norms, attention and its four projections, the MLP and its
two projections); a 12-layer training step of both towers made 284 layer
calls, host time a GPU waits for (`benchmarks/train_step.py --tiny`,
`benchmarks/RESULTS.md` §10). On JAX and TensorFlow the layers run once,
while tracing, and are left alone.

`call_sublayer(layer, ...)` calls `layer.call(...)` directly, in the
autocast scope `Layer.__call__` would set, only when that call would do
nothing else: PyTorch, the layer built, not quantized, not under a Keras
remat scope, no torch module hooks, every floating tensor argument already in
the layer's input dtype. Otherwise it is `layer(...)`. The caller passes
`training` itself where the sub-layer takes it.
"""

import keras
from keras.src import backend as keras_backend


def _torch_hooks_registered(layer):
    """Whether torch would run a forward hook around `layer` (its own hooks
    or global ones), which `layer.call` would skip."""
    from torch.nn.modules import module

    return bool(
        layer._forward_hooks or layer._forward_pre_hooks
        or module._global_forward_hooks or module._global_forward_pre_hooks
    )


def _autocast_scope(layer):
    """The autocast scope `Layer.__call__` would open around `layer.call` (its
    step 7), or None where it keeps the current one: none for a layer that
    does not autocast (LayerNorm reads its float32 weights as they are), the
    layer's compute dtype where its weights or the current scope differ."""
    scope = keras_backend.get_autocast_scope()
    if scope is not None:
        if not layer.autocast or not keras_backend.is_float_dtype(layer.compute_dtype):
            return keras_backend.AutocastScope(None)
        if scope.dtype != layer.compute_dtype:
            return keras_backend.AutocastScope(layer.compute_dtype)
        return None
    if layer.compute_dtype != layer.variable_dtype:
        return keras_backend.AutocastScope(layer.compute_dtype)
    return None


def _inputs_ready(layer, values):
    """Whether every value is None, a bool/int or a PyTorch tensor, floating
    tensors already in the layer's input dtype (no conversion to do)."""
    import torch

    for value in values:
        if value is None or isinstance(value, (bool, int)):
            continue
        if not isinstance(value, torch.Tensor):
            return False
        # Floating torch dtypes print as "torch." + Keras' name; cheaper than
        # `standardize_dtype` on every argument of every call.
        if value.is_floating_point() and str(value.dtype) != f"torch.{layer.input_dtype}":
            return False
    return True


def passes_through(layer, args, kwargs):
    """Whether `layer(*args, **kwargs)` would only run `layer.call` (see the
    module docstring)."""
    return (
        keras.backend.backend() == "torch"
        and layer.built
        and layer.quantization_mode is None
        and layer._remat_mode is None
        and not _torch_hooks_registered(layer)
        and _inputs_ready(layer, (*args, *kwargs.values()))
    )


def call_sublayer(layer, *args, **kwargs):
    """`layer(*args, **kwargs)`, as `layer.call` where that is all it would
    run (`passes_through`)."""
    if not passes_through(layer, args, kwargs):
        return layer(*args, **kwargs)
    scope = _autocast_scope(layer)
    if scope is None:
        return layer.call(*args, **kwargs)
    with scope:
        return layer.call(*args, **kwargs)
