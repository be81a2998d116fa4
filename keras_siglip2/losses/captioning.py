"""Token cross entropy for the LocCa decoder, dense and chunked over tokens.

The decoder predicts every next token over the full text vocabulary (256,000 Gemma ids),
so the (B, T, V) logits of a training batch dominate memory: B=256, T=64 would need
16 GB in float32 just for the forward logits. `chunked_cross_entropy` computes them
`chunk_size` tokens at a time inside a loop and recomputes each chunk in the backward
pass (`keras.remat`), so at most (chunk_size, V) logits exist at once.

Most target positions are padding (weight 0) and need no logits: the chunked form
first moves the weighted tokens to the front (a stable compaction), and chunks that
hold none of them are skipped (`ops.cond`) in the forward and the backward pass. Its
cost is that of the real tokens, rounded up to a chunk, whatever the padding.

Several token groups (e.g. the captioning and the localisation tasks) can share one
pass: `*_cross_entropy_sums` take `weights (..., G)` and return per-group sums.

`cross_entropy` and `chunked_cross_entropy` return the **weighted token mean**

    loss = Σ_t w_t · CE_t / Σ_t w_t,   CE_t = logsumexp_v(logit_tv) - logit_t[target_t]

which, with 0/1 weights (1 for non-pad target tokens), is the token-mean cross entropy
over the positions with weight > 0. When no position has weight > 0 the loss is 0
(not NaN), so a batch without region annotations can mask the localisation loss.
With `return_weight_sum=True` they return `(loss, Σ w)` so that callers can combine
several batches or devices into one token mean (Σ loss·Σw / Σ Σw).

Computation is float32 whatever the input dtype.
"""

import keras
from keras import ops

from keras_siglip2.losses.chunking import chunk_layout, static_fori_loop


def _prepare(hidden_states, output_embeddings, output_bias, targets, weights):
    """Flatten to `(N, D)`, `(N,)`, `(N, G)`; float32 (ids int32)."""
    hidden_states = ops.cast(ops.convert_to_tensor(hidden_states), "float32")
    output_embeddings = ops.cast(ops.convert_to_tensor(output_embeddings), "float32")
    if output_bias is not None:
        output_bias = ops.cast(ops.convert_to_tensor(output_bias), "float32")
    targets = ops.cast(ops.convert_to_tensor(targets), "int32")
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    groups = weights.shape[-1]
    return (
        ops.reshape(hidden_states, (-1, hidden_states.shape[-1])),
        output_embeddings,
        output_bias,
        ops.reshape(targets, (-1,)),
        ops.reshape(weights, (-1, groups)),
    )


def _weighted_mean(total, weight_sum, return_weight_sum):
    safe_sum = ops.where(weight_sum > 0, weight_sum, 1.0)
    loss = ops.where(weight_sum > 0, total / safe_sum, 0.0)
    return (loss, weight_sum) if return_weight_sum else loss


def _block_sums(hidden, targets, weights, embeddings, *bias):
    """`Σ_t w_tg · CE_t` per group over one block of tokens: `(G,)`.
    The logits `hidden · embeddingsᵀ` are formed without a transposed copy of
    the `(V, D)` table (which would be kept for the backward pass)."""
    logits = ops.einsum("nd,vd->nv", hidden, embeddings)
    if bias:
        logits = logits + bias[0]
    target_logits = ops.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    token_losses = ops.logsumexp(logits, axis=-1) - target_logits
    return ops.sum(weights * token_losses[:, None], axis=0)


def _block_sums_if(active, hidden, targets, weights, embeddings, *bias):
    """`_block_sums` when `active` (int32 scalar) > 0, else zeros without
    computing anything.

    The condition sits inside the rematerialised function: a `cond` around
    a rematerialised block would make JAX keep each branch's logits for the
    backward pass. (`active` is an int, not a bool: TF's `recompute_grad`
    differentiates every argument, and bool tensors have no gradient type.)"""
    return ops.cond(
        active > 0,
        lambda: _block_sums(hidden, targets, weights, embeddings, *bias),
        lambda: ops.zeros((weights.shape[-1],), "float32"),
    )


def cross_entropy_sums(hidden_states, output_embeddings, output_bias, targets, weights):
    """Dense reference of `chunked_cross_entropy_sums`: materialises all logits.

    Args:
        hidden_states: (..., D) decoder outputs (before the vocabulary projection).
        output_embeddings: (V, D) vocabulary projection, one row per token
            (the tied token-embedding table): `logits = hidden · output_embeddingsᵀ`.
        output_bias: (V,) or None.
        targets: (...) int target ids.
        weights: (..., G) float weights of G token groups; 0 leaves a token out
            of a group (padding).

    Returns:
        `(totals (G,), weight_sums (G,))` float32: `Σ w·CE` and `Σ w` per group.
    """
    hidden, embeddings, bias, targets, weights = _prepare(
        hidden_states, output_embeddings, output_bias, targets, weights
    )
    totals = _block_sums(hidden, targets, weights, embeddings, *(() if bias is None else (bias,)))
    return totals, ops.sum(weights, axis=0)


def chunked_cross_entropy_sums(
    hidden_states, output_embeddings, output_bias, targets, weights, chunk_size=256
):
    """`cross_entropy_sums` computed `chunk_size` tokens at a time, padding skipped.

    Same arguments, values and gradients. The tokens with a weight > 0 in any
    group are moved to the front (in order), the rest follow; each chunk's
    logits are computed inside a compiled loop with rematerialisation, so only
    `(chunk_size, V)` logits are alive at a time, in the forward and the
    backward pass, and a chunk without a weighted token is skipped (but for
    the first). Shapes must be static.
    """
    hidden, embeddings, bias, targets, weights = _prepare(
        hidden_states, output_embeddings, output_bias, targets, weights
    )
    num_tokens, dim = hidden.shape
    groups = weights.shape[-1]
    if num_tokens is None:
        raise ValueError(
            "chunked_cross_entropy needs static shapes, got "
            f"hidden_states.shape={tuple(hidden_states.shape)}."
        )
    chunk_size, num_chunks, padding = chunk_layout(num_tokens, chunk_size)

    # Stable compaction: weighted tokens first, then the others, each in order.
    scored = ops.cast(ops.any(weights > 0, axis=-1), "int32")
    num_scored = ops.sum(scored)
    rank = ops.where(
        scored > 0, ops.cumsum(scored) - 1, num_scored + ops.cumsum(1 - scored) - 1
    )
    order = ops.argsort(rank)
    hidden = ops.pad(ops.take(hidden, order, axis=0), [[0, padding], [0, 0]])
    targets = ops.pad(ops.take(targets, order, axis=0), [[0, padding]])
    weights = ops.pad(ops.take(weights, order, axis=0), [[0, padding], [0, 0]])

    remat_block = keras.remat(_block_sums_if)
    bias_args = () if bias is None else (bias,)

    def body(index, totals):
        start = index * chunk_size
        # The first chunk always runs, so the result stays differentiable
        # (zero gradients) when no token is weighted.
        return totals + remat_block(
            ops.cast(start < ops.maximum(num_scored, 1), "int32"),
            ops.slice(hidden, [start, 0], [chunk_size, dim]),
            ops.slice(targets, [start], [chunk_size]),
            ops.slice(weights, [start, 0], [chunk_size, groups]),
            embeddings,
            *bias_args,
        )

    totals = static_fori_loop(num_chunks, body, ops.zeros((groups,), "float32"))
    return totals, ops.sum(weights, axis=0)


def cross_entropy(
    hidden_states, output_embeddings, output_bias, targets, weights, return_weight_sum=False
):
    """Dense reference: materialises all (B, T, V) logits.

    Args:
        hidden_states: (B, T, D) decoder outputs (before the vocabulary projection).
        output_embeddings: (V, D) vocabulary projection, one row per token
            (the tied token-embedding table): `logits = hidden · output_embeddingsᵀ`.
        output_bias: (V,) or None.
        targets: (B, T) int target ids.
        weights: (B, T) float; 0 excludes a position (padding).
        return_weight_sum: also return Σ weights.

    Returns:
        float32 scalar weighted token-mean cross entropy (see the module docstring),
        or `(loss, weight_sum)`.
    """
    totals, weight_sums = cross_entropy_sums(
        hidden_states, output_embeddings, output_bias, targets, ops.expand_dims(weights, -1)
    )
    return _weighted_mean(totals[0], weight_sums[0], return_weight_sum)


def chunked_cross_entropy(
    hidden_states,
    output_embeddings,
    output_bias,
    targets,
    weights,
    chunk_size=256,
    return_weight_sum=False,
):
    """`cross_entropy` computed `chunk_size` tokens at a time (see
    `chunked_cross_entropy_sums`): same arguments, value and gradients."""
    totals, weight_sums = chunked_cross_entropy_sums(
        hidden_states, output_embeddings, output_bias, targets, ops.expand_dims(weights, -1),
        chunk_size=chunk_size,
    )
    return _weighted_mean(totals[0], weight_sums[0], return_weight_sum)
