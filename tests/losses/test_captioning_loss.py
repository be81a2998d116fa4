import keras
import numpy as np
import pytest

from keras_siglip2.losses import chunked_cross_entropy
from keras_siglip2.losses import chunked_cross_entropy_sums
from keras_siglip2.losses import cross_entropy
from keras_siglip2.losses import cross_entropy_sums


def _numpy_cross_entropy(hidden, table, bias, targets, weights):
    logits = hidden.astype("float64") @ table.astype("float64").T
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
    kernel = rng.normal(size=(vocab, dim)).astype("float32")
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


@pytest.mark.backends
@pytest.mark.parametrize("chunk_size", [1, 3, 16, 64])
def test_grouped_sums_with_scattered_padding(rng, value_and_grad, chunk_size):
    """Two groups over (B, K, T) tokens, most of them padding in no order:
    per-group sums and gradients equal the dense form and NumPy, whatever the
    chunk size (the weighted tokens are compacted, empty chunks skipped)."""
    hidden = rng.normal(size=(4, 3, 6, 8)).astype("float32")
    kernel = rng.normal(size=(30, 8)).astype("float32")
    bias = rng.normal(size=(30,)).astype("float32")
    targets = rng.integers(0, 30, size=(4, 3, 6)).astype("int32")
    weights = (rng.random((4, 3, 6)) < 0.25).astype("float32")
    captioning = np.array([1.0, 0.0, 0.0])[None, :, None]
    groups = np.stack([weights * captioning, weights * (1 - captioning)], -1).astype("float32")
    for group in range(2):
        mask = groups[..., group]
        expected = _numpy_cross_entropy(hidden, kernel, bias, targets, mask) * mask.sum()
        for fn in (cross_entropy_sums, lambda *a: chunked_cross_entropy_sums(*a, chunk_size)):
            totals, counts = fn(hidden, kernel, bias, targets, groups)
            np.testing.assert_allclose(keras.ops.convert_to_numpy(totals)[group], expected, rtol=1e-5)
            assert keras.ops.convert_to_numpy(counts)[group] == mask.sum()

    def total(fn):
        def weighted(h, k, b):
            totals = fn(h, k, b, targets, groups)[0]
            return totals[0] + 2.0 * totals[1]

        return weighted

    dense = value_and_grad(total(cross_entropy_sums), hidden, kernel, bias)
    chunked = value_and_grad(
        total(lambda *a: chunked_cross_entropy_sums(*a, chunk_size)), hidden, kernel, bias
    )
    np.testing.assert_allclose(chunked[0], dense[0], rtol=1e-5)
    for got, expected in zip(chunked[1], dense[1]):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def _compiled_temp_bytes(fn, grad, batch, length=64, dim=64, vocab=256_000):
    """Temp bytes of jit(fn) (or of its value and gradient) at these shapes."""
    import jax

    specs = (
        jax.ShapeDtypeStruct((batch, length, dim), "float32"),
        jax.ShapeDtypeStruct((vocab, dim), "float32"),
        jax.ShapeDtypeStruct((vocab,), "float32"),
        jax.ShapeDtypeStruct((batch, length), "int32"),
        jax.ShapeDtypeStruct((batch, length), "float32"),
    )
    if grad:
        fn = jax.value_and_grad(fn, argnums=(0, 1, 2))
    return jax.jit(fn).lower(*specs).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="XLA memory analysis (JAX run)")
def test_chunked_cross_entropy_keeps_one_chunk_of_logits_alive():
    """B=8, T=64, D=64, V=256,000: the dense logits alone are 500 MiB; the
    chunked loss holds a few 64-token chunks of logits (logits, softmax and
    their gradient in the backward pass), however many chunks there are."""
    vocab, chunk = 256_000, 64
    chunk_logits = chunk * vocab * 4
    chunked = lambda *a: chunked_cross_entropy(*a, chunk_size=chunk)  # noqa: E731
    for grad in (False, True):
        dense_bytes = _compiled_temp_bytes(cross_entropy, grad, batch=8)
        chunked_bytes = _compiled_temp_bytes(chunked, grad, batch=8)
        assert dense_bytes >= 8 * 64 * vocab * 4
        assert chunked_bytes < 5 * chunk_logits, (grad, chunked_bytes / chunk_logits)
        # Four times the chunks, the same memory: no chunk's logits outlive it.
        longer = _compiled_temp_bytes(chunked, grad, batch=32)
        assert longer < 1.1 * chunked_bytes, (grad, longer, chunked_bytes)
