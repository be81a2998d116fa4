"""`Dense` and `EinsumDense` whose PyTorch call is one `torch.nn.functional.linear`.

Keras computes a projection as a matmul (an einsum: permutes, a batched matmul)
and then a separate bias add, a second pass over the activations; PyTorch's
`linear` adds the bias inside the GEMM (`addmm`), as transformers' layers do.
On JAX and TensorFlow XLA/Grappler fuse the add already, and a quantized layer
keeps Keras' own call everywhere; LoRA works unchanged (`kernel` is the
merged kernel). Weights, names and numerics are Keras' own; the classes keep
Keras' class names because `.weights.h5` files key layers held in lists by
their class name (`dense`, `einsum_dense`): presets saved before load as they are.
"""

import keras


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


def torch_linear(inputs, kernel, bias, contracted):
    """`inputs (…, *K)` · `kernel (*K, *O)` + `bias (*O)` → `(…, *O)` as one
    `F.linear` over the flattened `K` and `O` axes (PyTorch tensors)."""
    import torch.nn.functional as F

    leading = inputs.shape[: inputs.ndim - contracted]
    flat = inputs.reshape(*leading, -1)
    weight = kernel.reshape(flat.shape[-1], -1)
    return F.linear(flat, weight.T, bias.reshape(-1)).reshape(*leading, *kernel.shape[contracted:])


def biased_matmul(inputs, kernel, bias):
    """`inputs (…, K) @ kernel (K, O) + bias (O,)` → `(…, O)`; one `F.linear` on PyTorch."""
    if keras.backend.backend() != "torch":
        return keras.ops.matmul(inputs, kernel) + bias
    convert = keras.ops.convert_to_tensor
    return torch_linear(convert(inputs), convert(kernel), convert(bias), contracted=1)


class FusedBiasOnTorch:
    """Mixin for a Keras `Dense`/`EinsumDense`: on PyTorch, a biased projection
    of the supported form runs as `torch_linear`; otherwise Keras' `call`."""

    def _contracted_axes(self):
        return contracted_axes(self.equation) if hasattr(self, "equation") else 1

    def call(self, inputs, training=None):
        contracted = self._contracted_axes()
        if keras.backend.backend() != "torch" or self.bias is None or contracted is None:
            return super().call(inputs, training=training)
        outputs = torch_linear(
            keras.ops.convert_to_tensor(inputs), keras.ops.convert_to_tensor(self.kernel),
            keras.ops.convert_to_tensor(self.bias), contracted,
        )
        return outputs if self.activation is None else self.activation(outputs)

    def quantize(self, mode=None, type_check=True, config=None):
        # Keras refuses subclasses (their `call` might ignore quantization); a
        # quantized layer runs Keras' `quantized_call`, never the `call` above.
        super().quantize(mode, type_check=False, config=config)


@keras.saving.register_keras_serializable(package="keras_siglip2")
class Dense(FusedBiasOnTorch, keras.layers.Dense):
    """`keras.layers.Dense`; on PyTorch, bias added inside the GEMM."""


@keras.saving.register_keras_serializable(package="keras_siglip2")
class EinsumDense(FusedBiasOnTorch, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense`; on PyTorch, bias added inside the GEMM for
    equations that contract trailing input axes with leading kernel axes."""
