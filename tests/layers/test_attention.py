"""`dot_product_attention` (every backend's path, PyTorch's own included)
against a NumPy softmax attention, with each kind of mask."""

import keras
import numpy as np
import pytest

from keras_siglip2.layers.attention_kernels import dot_product_attention

pytestmark = pytest.mark.backends


def numpy_attention(query, key, value, scale, allowed):
    """`(B, T, N, H)` query, `(B, S, N, H)` key/value, `allowed (B, N|1, T, S)`;
    a query with no allowed key attends uniformly (Keras' convention)."""
    scores = np.einsum("btnh,bsnh->bnts", query, key) * scale
    scores = np.where(allowed, scores, -1e30)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", weights, value)


@pytest.mark.parametrize("mask_kind", ["none", "padding", "padding_with_empty_row", "causal"])
def test_matches_numpy_attention(rng, mask_kind):
    batch, queries, keys, heads, head_dim = 3, 5, 5, 2, 4
    query, key, value = (
        rng.normal(size=(batch, length, heads, head_dim)).astype("float32")
        for length in (queries, keys, keys)
    )
    allowed = np.ones((batch, 1, queries, keys), bool)
    arguments = {}
    if mask_kind.startswith("padding"):
        lengths = [5, 2, 0 if mask_kind == "padding_with_empty_row" else 3]
        key_mask = np.arange(keys)[None] < np.array(lengths)[:, None]
        arguments["key_mask"] = keras.ops.convert_to_tensor(key_mask)
        allowed = np.broadcast_to(key_mask[:, None, None, :], allowed.shape)
    elif mask_kind == "causal":
        allowed = np.broadcast_to(np.tril(np.ones((queries, keys), bool)), allowed.shape)
        arguments["mask"] = keras.ops.convert_to_tensor(allowed)

    ours = dot_product_attention(
        *(keras.ops.convert_to_tensor(t) for t in (query, key, value)), scale=0.5, **arguments
    )
    expected = numpy_attention(query, key, value, 0.5, allowed)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, atol=1e-5)
