"""`Dense` / `EinsumDense` compute what Keras' layers compute (outputs
and gradients, float32 and mixed bfloat16, with LoRA) on every backend; on
PyTorch through one `F.linear`. `project` is a matmul over the last axis."""

import keras
import numpy as np
import pytest

from keras_siglip2.layers.projections import Dense, EinsumDense, contracted_axes, project


@pytest.mark.parametrize("equation, expected", [
    ("btd,dnh->btnh", 1), ("btnh,nhd->btd", 2), ("...d,dn->...n", 1),
    ("btd,de->bte", 1), ("abc,cd->abd", 1), ("btd,nd->btn", None), ("bd,dk->kb", None),
])
def test_contracted_axes(equation, expected):
    assert contracted_axes(equation) == expected


def test_class_names_keep_saved_weight_keys():
    # Keras keys a layer held in a list by its snake-cased class name: a new
    # name would orphan the weights of every preset saved before.
    from keras.src.utils.naming import to_snake_case

    assert to_snake_case(Dense.__name__) == "dense"
    assert to_snake_case(EinsumDense.__name__) == "einsum_dense"


CASES = {
    "dense": (lambda cls: cls(6), keras.layers.Dense, (2, 5, 8)),
    "einsum-in": (lambda cls: cls("btd,dnh->btnh", output_shape=(None, 2, 3), bias_axes="nh"),
                  keras.layers.EinsumDense, (2, 5, 8)),
    "einsum-out": (lambda cls: cls("btnh,nhd->btd", output_shape=(None, 8), bias_axes="d"),
                   keras.layers.EinsumDense, (2, 5, 2, 3)),
}


def _gradients(layer, x):
    """Outputs and the gradients of their weighted sum w.r.t. the weights."""
    weights = keras.ops.convert_to_tensor(np.linspace(-1, 1, layer(x).shape[-1]).astype("float32"))
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(values):
            y, _ = layer.stateless_call(values, frozen, x)
            return keras.ops.sum(keras.ops.cast(y, "float32") * weights)
        values = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]
        return [np.asarray(g) for g in jax.grad(loss)(values)]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = keras.ops.sum(keras.ops.cast(layer(x), "float32") * weights)
        return [g.numpy() for g in tape.gradient(y, [v.value for v in layer.trainable_variables])]
    y = keras.ops.sum(keras.ops.cast(layer(x), "float32") * weights)
    y.backward()
    return [v.value.grad.detach().cpu().numpy() for v in layer.trainable_variables]


@pytest.mark.backends
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_outputs_and_gradients_as_keras(case, lora, dtype):
    make, _, shape = CASES[case]
    fused_class = Dense if case == "dense" else EinsumDense
    keras_class = CASES[case][1]
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layers = []
    for cls in (fused_class, keras_class):
        layer = make(cls) if cls is fused_class else make(keras_class)
        layer.dtype_policy = keras.dtype_policies.get(dtype)
        layer.build(shape)
        layers.append(layer)
    for source, target in zip(layers[0].weights, layers[1].weights):
        source.assign(np.random.default_rng(1).normal(size=source.shape).astype("float32"))
        target.assign(source)
    if lora:
        for layer in layers:
            layer.enable_lora(2, b_initializer="ones")
        for source, target in zip(layers[0].trainable_variables, layers[1].trainable_variables):
            target.assign(source)
    fused, reference = (keras.ops.convert_to_numpy(layer(x)) for layer in layers)
    assert layers[0](x).dtype == layers[1](x).dtype
    tolerance = 1e-5 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(fused.astype("float32"), reference.astype("float32"),
                               rtol=tolerance, atol=tolerance)
    for got, want in zip(*(_gradients(layer, x) for layer in layers)):
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


@pytest.mark.backends
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_project_multiplies_the_last_axis(with_bias):
    rng = np.random.default_rng(0)
    x, kernel, bias = (rng.normal(size=shape).astype("float32")
                       for shape in ((2, 5, 8), (8, 6), (6,)))
    got = keras.ops.convert_to_numpy(project(x, kernel, bias if with_bias else None))
    want = x @ kernel + (bias if with_bias else 0.0)
    assert got.shape == (2, 5, 6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
