import math

import keras
import numpy as np
import pytest

from keras_siglip2.losses import chunked_sigmoid_loss
from keras_siglip2.losses import sigmoid_loss
from keras_siglip2.losses import sigmoid_loss_block
from keras_siglip2.losses import sigmoid_nll_sum


def _normalised(rng, shape):
    x = rng.normal(size=shape).astype("float32")
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _numpy_sigmoid_loss(img, txt, log_temperature, bias):
    """Written out pair by pair, in float64."""
    img, txt = img.astype("float64"), txt.astype("float64")
    batch = img.shape[0]
    total = 0.0
    for i in range(batch):
        for j in range(batch):
            logit = img[i] @ txt[j] * math.exp(log_temperature) + bias
            z = 1.0 if i == j else -1.0
            total += np.logaddexp(0.0, -z * logit)  # -log σ(z·logit)
    return total / batch


@pytest.mark.backends
def test_sigmoid_loss_matches_pairwise_numpy(rng):
    img, txt = _normalised(rng, (6, 5)), _normalised(rng, (6, 5))
    txt[2] = img[2]  # one confident positive
    got = keras.ops.convert_to_numpy(sigmoid_loss(img, txt, math.log(10.0), -10.0))
    np.testing.assert_allclose(got, _numpy_sigmoid_loss(img, txt, math.log(10.0), -10.0), rtol=1e-5)
    got = keras.ops.convert_to_numpy(sigmoid_loss(img, txt, 0.3, 1.5))
    np.testing.assert_allclose(got, _numpy_sigmoid_loss(img, txt, 0.3, 1.5), rtol=1e-5)


@pytest.mark.backends
def test_sigmoid_loss_is_float32_and_stable_for_huge_logits(rng):
    img = _normalised(rng, (4, 8))
    # Perfect matches with a huge scale: the positives' logits are +1e4, the rest
    # about ±1e4·cos; a naive log(sigmoid) would give log(0) = -inf.
    half = keras.ops.cast(img, "float16")
    got = sigmoid_loss(half, half, math.log(1e4), 0.0)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    got = float(keras.ops.convert_to_numpy(got))
    img16 = img.astype("float16").astype("float32")
    expected = _numpy_sigmoid_loss(img16, img16, math.log(1e4), 0.0)
    assert np.isfinite(got)
    np.testing.assert_allclose(got, expected, rtol=1e-4)


@pytest.mark.backends
@pytest.mark.parametrize("chunk_size", [3, 5, 12, 50])
def test_chunked_sigmoid_loss_equals_dense_values_and_gradients(rng, value_and_grad, chunk_size):
    img, txt = _normalised(rng, (12, 6)), _normalised(rng, (12, 6))
    args = (img, txt, np.float32(math.log(10.0)), np.float32(-4.0))
    dense_value, dense_grads = value_and_grad(sigmoid_loss, *args)
    value, grads = value_and_grad(
        lambda *a: chunked_sigmoid_loss(*a, chunk_size=chunk_size), *args
    )
    np.testing.assert_allclose(value, dense_value, rtol=1e-5)
    for got, expected in zip(grads, dense_grads):
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.backends
def test_chunked_sigmoid_loss_compiles(rng):
    """Differentiable inside the backend's compiled step (XLA on JAX and TF);
    torch trains eagerly, so there it goes through autograd and checkpointing."""
    img, txt = _normalised(rng, (10, 4)), _normalised(rng, (10, 4))
    args = (img, txt, np.float32(1.0), np.float32(-2.0))
    expected = float(keras.ops.convert_to_numpy(sigmoid_loss(*args)))
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, grads = jax.jit(
            jax.value_and_grad(lambda *a: chunked_sigmoid_loss(*a, chunk_size=4), argnums=(0, 1))
        )(*args)
    elif backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(*xs):
            with tf.GradientTape() as tape:
                tape.watch(xs[:2])
                v = chunked_sigmoid_loss(*xs, chunk_size=4)
            return v, tape.gradient(v, xs[:2])

        value, grads = step(*[tf.constant(a) for a in args])
    else:
        import torch

        inputs = [torch.tensor(a, requires_grad=i < 2) for i, a in enumerate(args)]
        value = chunked_sigmoid_loss(*inputs, chunk_size=4)
        value.backward()
        value, grads = value.detach(), (inputs[0].grad, inputs[1].grad)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in grads)


@pytest.mark.backends
def test_blocks_compose_like_a_ring(rng):
    """Local block with positives + negatives-only blocks from the other 'devices'."""
    img, txt = _normalised(rng, (8, 5)), _normalised(rng, (8, 5))
    t, b = 0.7, -1.0
    per_device = 4
    total = 0.0
    for d in range(2):
        local_img = img[d * per_device:(d + 1) * per_device]
        for e in range(2):
            remote_txt = txt[e * per_device:(e + 1) * per_device]
            offset = 0 if d == e else None
            total += float(keras.ops.convert_to_numpy(
                sigmoid_loss_block(local_img, remote_txt, t, b, positive_offset=offset)
            ))
    np.testing.assert_allclose(total / 8, _numpy_sigmoid_loss(img, txt, t, b), rtol=1e-5)
    # A global column offset places the positives inside a block of a wider batch.
    block = sigmoid_loss_block(img, txt[4:], t, b, positive_offset=4)
    full = keras.ops.convert_to_numpy(sigmoid_loss_block(img, txt, t, b))
    left = keras.ops.convert_to_numpy(sigmoid_loss_block(img, txt[:4], t, b))
    np.testing.assert_allclose(left + keras.ops.convert_to_numpy(block), full, rtol=1e-5)


def test_chunked_sigmoid_loss_needs_less_compiled_memory():
    jax = pytest.importorskip("jax")
    if keras.backend.backend() != "jax":
        pytest.skip("memory analysis of the compiled step is a JAX feature")
    spec = jax.ShapeDtypeStruct((2048, 16), "float32")
    scalar = jax.ShapeDtypeStruct((), "float32")

    def temp_bytes(fn):
        step = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
        return step.lower(spec, spec, scalar, scalar).compile().memory_analysis().temp_size_in_bytes

    dense = temp_bytes(sigmoid_loss)
    chunked = temp_bytes(lambda *a: chunked_sigmoid_loss(*a, chunk_size=128))
    assert dense >= 2048 * 2048 * 4  # at least one B×B float32 buffer
    assert chunked * 4 < dense, (chunked, dense)


@pytest.mark.backends
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_row_blocks_with_offsets_add_up_to_the_loss(rng, chunk_size):
    """What each replica / device computes: its rows against all texts."""
    img, txt = _normalised(rng, (10, 5)), _normalised(rng, (10, 5))
    parts = [
        keras.ops.convert_to_numpy(
            sigmoid_nll_sum(img[start:stop], txt, 0.4, -2.0, first_row=start, chunk_size=chunk_size)
        )
        for start, stop in ((0, 6), (6, 10))
    ]
    np.testing.assert_allclose(sum(parts) / 10, _numpy_sigmoid_loss(img, txt, 0.4, -2.0), rtol=1e-5)
