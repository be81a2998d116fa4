"""Token cross entropy for the LocCa decoder, dense and chunked over tokens.

The decoder predicts every next token over the full text vocabulary (256,000 Gemma ids),
so the (B, T, V) logits of a training batch dominate memory: B=256, T=64 would need
16 GB in float32 just for the forward logits. `chunked_cross_entropy` computes them
`chunk_size` tokens at a time inside a loop and recomputes each chunk in the backward
pass (`keras.remat`), so at most (chunk_size, V) logits exist at once.

Both functions return the **weighted token mean**

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

from keras_siglip2.losses.chunking import static_fori_loop


def _prepare(hidden_states, output_kernel, output_bias, targets, weights):
    hidden_states = ops.cast(ops.convert_to_tensor(hidden_states), "float32")
    output_kernel = ops.cast(ops.convert_to_tensor(output_kernel), "float32")
    if output_bias is not None:
        output_bias = ops.cast(ops.convert_to_tensor(output_bias), "float32")
    targets = ops.cast(ops.convert_to_tensor(targets), "int32")
    weights = ops.cast(ops.convert_to_tensor(weights), "float32")
    return hidden_states, output_kernel, output_bias, targets, weights


def _weighted_mean(total, weight_sum, return_weight_sum):
    safe_sum = ops.where(weight_sum > 0, weight_sum, 1.0)
    loss = ops.where(weight_sum > 0, total / safe_sum, 0.0)
    return (loss, weight_sum) if return_weight_sum else loss


def _target_logits(hidden_states, output_kernel, output_bias, targets):
    """logit[target] per token, from the target's kernel column: O(N·D) memory."""
    columns = ops.take(ops.transpose(output_kernel), targets, axis=0)  # (..., D)
    logits = ops.sum(hidden_states * columns, axis=-1)
    if output_bias is not None:
        logits = logits + ops.take(output_bias, targets, axis=0)
    return logits


def cross_entropy(
    hidden_states, output_kernel, output_bias, targets, weights, return_weight_sum=False
):
    """Dense reference: materialises all (B, T, V) logits.

    Args:
        hidden_states: (B, T, D) decoder outputs (before the vocabulary projection).
        output_kernel: (D, V) vocabulary projection.
        output_bias: (V,) or None.
        targets: (B, T) int target ids.
        weights: (B, T) float; 0 excludes a position (padding).
        return_weight_sum: also return Σ weights.

    Returns:
        float32 scalar weighted token-mean cross entropy (see the module docstring),
        or `(loss, weight_sum)`.
    """
    hidden_states, output_kernel, output_bias, targets, weights = _prepare(
        hidden_states, output_kernel, output_bias, targets, weights
    )
    logits = ops.matmul(hidden_states, output_kernel)
    if output_bias is not None:
        logits = logits + output_bias
    log_probs = ops.log_softmax(logits, axis=-1)
    target_log_probs = ops.squeeze(
        ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1), -1
    )
    total = -ops.sum(weights * target_log_probs)
    return _weighted_mean(total, ops.sum(weights), return_weight_sum)


def chunked_cross_entropy(
    hidden_states,
    output_kernel,
    output_bias,
    targets,
    weights,
    chunk_size=256,
    return_weight_sum=False,
):
    """`cross_entropy` computed `chunk_size` tokens at a time.

    Same arguments, value and gradients as `cross_entropy`; the B·T tokens are
    flattened, zero-padded (weight 0) to a multiple of `chunk_size`, and each chunk's
    `logsumexp` over the vocabulary is evaluated in a compiled loop with
    rematerialisation. Only (chunk_size, V) logits are alive at any time, in the
    forward and in the backward pass. The target logits are taken directly from the
    targets' kernel columns (O(B·T·D)). Shapes must be static.
    """
    hidden_states, output_kernel, output_bias, targets, weights = _prepare(
        hidden_states, output_kernel, output_bias, targets, weights
    )
    dim = hidden_states.shape[-1]
    num_tokens = 1
    for size in hidden_states.shape[:-1]:
        if size is None:
            raise ValueError(
                "chunked_cross_entropy needs static shapes, got "
                f"hidden_states.shape={hidden_states.shape}."
            )
        num_tokens *= size
    chunk_size = int(chunk_size)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}.")

    hidden_states = ops.reshape(hidden_states, (num_tokens, dim))
    targets = ops.reshape(targets, (num_tokens,))
    weights = ops.reshape(weights, (num_tokens,))
    weight_sum = ops.sum(weights)
    target_logits = _target_logits(hidden_states, output_kernel, output_bias, targets)
    if num_tokens <= chunk_size:
        chunk_size = num_tokens
    num_chunks = -(-num_tokens // chunk_size)
    padding = num_chunks * chunk_size - num_tokens
    if padding:
        hidden_states = ops.pad(hidden_states, [[0, padding], [0, 0]])
        weights = ops.pad(weights, [[0, padding]])
        target_logits = ops.pad(target_logits, [[0, padding]])

    def block(hidden_chunk, weight_chunk, target_chunk, kernel, *bias):
        logits = ops.matmul(hidden_chunk, kernel)
        if bias:
            logits = logits + bias[0]
        return ops.sum(weight_chunk * (ops.logsumexp(logits, axis=-1) - target_chunk))

    remat_block = keras.remat(block)
    bias_args = () if output_bias is None else (output_bias,)

    def body(index, total):
        start = index * chunk_size
        hidden_chunk = ops.slice(hidden_states, [start, 0], [chunk_size, dim])
        weight_chunk = ops.slice(weights, [start], [chunk_size])
        target_chunk = ops.slice(target_logits, [start], [chunk_size])
        return total + remat_block(
            hidden_chunk, weight_chunk, target_chunk, output_kernel, *bias_args
        )

    total = static_fori_loop(num_chunks, body, ops.zeros((), "float32"))
    return _weighted_mean(total, weight_sum, return_weight_sum)
