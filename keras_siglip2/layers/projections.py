"""`Dense` and `EinsumDense` that project as one 2-D matmul on PyTorch and JAX.

Keras computes a projection of `(B, T, D)` activations as a matmul (an einsum)
on the 3-D tensor and then adds the bias. Flattening the leading axes first
(`flat_linear`) makes it the plain GEMM both backends are fastest at:
- on PyTorch one `torch.nn.functional.linear`, the bias added inside the GEMM
  (`addmm`), as transformers' layers do, instead of permutes, a batched
  matmul and a second pass for the bias;
- on JAX the backward's weight gradient contracts one flattened axis instead
  of two; XLA on CPU ran the 3-D form's forward + backward at half the speed
  (`benchmarks/projection_grad.py`).
`project` does the same for a bare kernel (the patch embedding, the
self-supervised heads' prototype scores). TensorFlow and a quantized layer
keep Keras' own call. LoRA works unchanged
(`kernel` is the merged kernel). Weights, names and numerics are Keras' own;
the classes keep Keras' class names because `.weights.h5` files key layers
held in lists by their class name (`dense`, `einsum_dense`): presets saved
before load as they are.
"""

import math

import keras
from keras import ops


def contracted_axes(equation):
    """How many trailing input axes an `EinsumDense` equation contracts with the
    kernel's leading axes, for equations of the form
    `<batch><contracted>,<contracted><out>-><batch><out>` (e.g. `btd,dnh->btnh`:
    1, `btnh,nhd->btd`: 2); None for any other form."""
    inputs, rest = equation.split(",")
    kernel, output = rest.split("->")
    for count in range(1, min(len(inputs), len(kernel)) + 1):
        if inputs[-count:] == kernel[:count] and output == inputs[:-count] + kernel[count:]:
            return count
    return None


def flat_linear(inputs, kernel, bias, contracted):
    """`inputs (…, *K)` · `kernel (*K, *O)` + `bias (*O)` or None → `(…, *O)`
    as one 2-D matmul over the flattened `K` and `O` axes: on PyTorch one
    `F.linear` (PyTorch tensors), elsewhere `keras.ops`."""
    if keras.backend.backend() == "torch":
        import torch.nn.functional as F

        leading = inputs.shape[: inputs.ndim - contracted]
        flat = inputs.reshape(*leading, -1)
        weight = kernel.reshape(flat.shape[-1], -1)
        bias = None if bias is None else bias.reshape(-1)
        return F.linear(flat, weight.T, bias).reshape(*leading, *kernel.shape[contracted:])
    leading = ops.shape(inputs)[: len(inputs.shape) - contracted]
    inner = math.prod(kernel.shape[:contracted])
    outputs = ops.matmul(ops.reshape(inputs, (-1, inner)), ops.reshape(kernel, (inner, -1)))
    if bias is not None:
        outputs = outputs + ops.reshape(bias, (-1,))
    return ops.reshape(outputs, (*leading, *kernel.shape[contracted:]))


def as_tensor(value):
    """`value` as a backend tensor: a Keras variable's value (autocast
    applied), a backend tensor as it is, anything else converted. Cheaper
    than `ops.convert_to_tensor` (which first looks for symbolic tensors),
    and a projection converts three values per call: on eager PyTorch that
    is host time on every call."""
    if isinstance(value, keras.Variable):
        return value.value
    if ops.is_tensor(value):
        return value
    return ops.convert_to_tensor(value)


def flattens():
    """Whether this backend projects through `flat_linear` (PyTorch, JAX)."""
    return keras.backend.backend() in ("torch", "jax")


def project(inputs, kernel, bias=None):
    """`inputs (…, K) @ kernel (K, O)` (`+ bias (O,)`) → `(…, O)`; one 2-D
    matmul on PyTorch and JAX (`flat_linear`)."""
    if not flattens():
        outputs = ops.matmul(inputs, kernel)
        return outputs if bias is None else outputs + bias
    bias = None if bias is None else as_tensor(bias)
    return flat_linear(as_tensor(inputs), as_tensor(kernel), bias, contracted=1)


class FlatProjection:
    """Mixin for a Keras `Dense`/`EinsumDense`: on PyTorch and JAX, a
    projection of the supported form runs as `flat_linear`; otherwise Keras'
    `call`."""

    def _contracted_axes(self):
        return contracted_axes(self.equation) if hasattr(self, "equation") else 1

    def call(self, inputs, training=None):
        contracted = self._contracted_axes()
        if not flattens() or contracted is None:
            return super().call(inputs, training=training)
        outputs = flat_linear(
            as_tensor(inputs), as_tensor(self.kernel),
            None if self.bias is None else as_tensor(self.bias), contracted,
        )
        return outputs if self.activation is None else self.activation(outputs)

    def quantize(self, mode=None, type_check=True, config=None):
        # Keras refuses subclasses (their `call` might ignore quantization); a
        # quantized layer runs Keras' `quantized_call`, never the `call` above.
        super().quantize(mode, type_check=False, config=config)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class Dense(FlatProjection, keras.layers.Dense):
    """`keras.layers.Dense`, one 2-D matmul on PyTorch and JAX."""


@keras.saving.register_keras_serializable(package="keras_siglip2")
class EinsumDense(FlatProjection, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense`, one 2-D matmul on PyTorch and JAX for
    equations that contract trailing input axes with leading kernel axes."""
