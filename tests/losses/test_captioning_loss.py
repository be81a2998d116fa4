import keras
import numpy as np
import pytest

from keras_siglip2.losses import chunked_cross_entropy
from keras_siglip2.losses import cross_entropy


def _numpy_cross_entropy(hidden, kernel, bias, targets, weights):
    logits = hidden.astype("float64") @ kernel.astype("float64")
    if bias is not None:
        logits = logits + bias
    total, count = 0.0, 0.0
    for index in np.ndindex(targets.shape):
        row = logits[index]
        log_z = np.log(np.sum(np.exp(row - row.max()))) + row.max()
        total += weights[index] * (log_z - row[targets[index]])
        count += weights[index]
    return total / count


def _batch(rng, batch=3, length=5, dim=8, vocab=40):
    hidden = rng.normal(size=(batch, length, dim)).astype("float32")
    kernel = rng.normal(size=(dim, vocab)).astype("float32")
    bias = rng.normal(size=(vocab,)).astype("float32")
    targets = rng.integers(0, vocab, size=(batch, length)).astype("int32")
    weights = np.ones((batch, length), "float32")
    weights[0, 3:] = 0.0  # padding
    weights[2, 1:] = 0.0
    targets[weights == 0] = 0
    return hidden, kernel, bias, targets, weights


@pytest.mark.backends
@pytest.mark.parametrize("use_bias", [True, False])
def test_cross_entropy_matches_numpy(rng, use_bias):
    hidden, kernel, bias, targets, weights = _batch(rng)
    bias = bias if use_bias else None
    expected = _numpy_cross_entropy(hidden, kernel, bias, targets, weights)
    for fn in (cross_entropy, lambda *a: chunked_cross_entropy(*a, chunk_size=4)):
        got = keras.ops.convert_to_numpy(fn(hidden, kernel, bias, targets, weights))
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.backends
def test_padding_positions_do_not_count(rng):
    hidden, kernel, bias, targets, weights = _batch(rng)
    changed = targets.copy()
    changed[weights == 0] = 7
    hidden_changed = hidden.copy()
    hidden_changed[weights == 0] = 100.0
    a = chunked_cross_entropy(hidden, kernel, bias, targets, weights, chunk_size=4)
    b = chunked_cross_entropy(hidden_changed, kernel, bias, changed, weights, chunk_size=4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-6)


@pytest.mark.backends
@pytest.mark.parametrize("chunk_size", [4, 7, 64])
def test_chunked_equals_dense_values_and_gradients(rng, value_and_grad, chunk_size):
    hidden, kernel, bias, targets, weights = _batch(rng)
    dense_value, dense_grads = value_and_grad(
        lambda h, k, b: cross_entropy(h, k, b, targets, weights), hidden, kernel, bias
    )
    value, grads = value_and_grad(
        lambda h, k, b: chunked_cross_entropy(h, k, b, targets, weights, chunk_size=chunk_size),
        hidden,
        kernel,
        bias,
    )
    np.testing.assert_allclose(value, dense_value, rtol=1e-5)
    for got, expected in zip(grads, dense_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # Masked positions receive no gradient.
    assert np.all(grads[0][weights == 0] == 0)
    assert np.any(grads[0][weights > 0] != 0)


@pytest.mark.backends
def test_no_tokens_gives_zero_loss_and_finite_gradients(rng, value_and_grad):
    hidden, kernel, bias, targets, _ = _batch(rng)
    weights = np.zeros(targets.shape, "float32")
    value, grads = value_and_grad(
        lambda h, k: chunked_cross_entropy(h, k, None, targets, weights, chunk_size=4),
        hidden,
        kernel,
    )
    assert value == 0.0
    assert all(np.all(g == 0) for g in grads)


@pytest.mark.backends
def test_return_weight_sum(rng):
    hidden, kernel, bias, targets, weights = _batch(rng)
    for fn in (cross_entropy, lambda *a, **k: chunked_cross_entropy(*a, chunk_size=4, **k)):
        loss, count = fn(hidden, kernel, bias, targets, weights, return_weight_sum=True)
        assert float(keras.ops.convert_to_numpy(count)) == weights.sum() == 9
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loss),
            _numpy_cross_entropy(hidden, kernel, bias, targets, weights),
            rtol=1e-5,
        )


def test_chunked_cross_entropy_compiles_to_much_less_memory():
    """B=8, T=64, D=64, V=256,000: the dense logits alone are 500 MiB."""
    jax = pytest.importorskip("jax")
    if keras.backend.backend() != "jax":
        pytest.skip("memory analysis of the compiled step is a JAX feature")
    batch, length, dim, vocab = 8, 64, 64, 256_000
    specs = (
        jax.ShapeDtypeStruct((batch, length, dim), "float32"),
        jax.ShapeDtypeStruct((dim, vocab), "float32"),
        jax.ShapeDtypeStruct((vocab,), "float32"),
        jax.ShapeDtypeStruct((batch, length), "int32"),
        jax.ShapeDtypeStruct((batch, length), "float32"),
    )

    def temp_bytes(fn, grad):
        if grad:
            fn = jax.value_and_grad(fn, argnums=(0, 1, 2))
        return jax.jit(fn).lower(*specs).compile().memory_analysis().temp_size_in_bytes

    logits_bytes = batch * length * vocab * 4
    chunked = lambda *a: chunked_cross_entropy(*a, chunk_size=64)  # noqa: E731
    for grad in (False, True):
        dense_bytes = temp_bytes(cross_entropy, grad)
        chunked_bytes = temp_bytes(chunked, grad)
        assert dense_bytes >= logits_bytes
        assert chunked_bytes * 4 < dense_bytes, (grad, chunked_bytes, dense_bytes)
    # Forward: one (64, V) chunk of logits, not all 512 rows.
    assert temp_bytes(chunked, False) < logits_bytes / 4
