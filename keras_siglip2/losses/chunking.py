"""The loop that chunked losses run their blocks in.

`static_fori_loop(num_iterations, body, init)` is `keras.ops.fori_loop(0, n, body, init)`
with a static trip count, except on TensorFlow, where Keras' loop has no
`maximum_iterations` and therefore cannot be differentiated under XLA
(`jit_compile=True`); there it calls `tf.while_loop` with `maximum_iterations=n`.
On JAX the loop lowers to `lax.scan` (reverse-differentiable), on torch to a Python loop.

Pair it with `keras.remat` on the block function (and pass every tensor the block needs
as an argument, never through a closure, so that `tf.recompute_grad` differentiates
with respect to it): then the backward pass recomputes each block instead of keeping
all of them alive.
"""

import keras
from keras import ops


def static_fori_loop(num_iterations, body, init):
    """Runs `carry = body(i, carry)` for `i = 0 … num_iterations - 1` (a Python int)."""
    num_iterations = int(num_iterations)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.while_loop(
            lambda i, carry: i < num_iterations,
            lambda i, carry: (i + 1, body(i, carry)),
            (tf.constant(0, "int32"), init),
            maximum_iterations=num_iterations,
        )[1]
    return ops.fori_loop(0, num_iterations, body, init)


def chunk_layout(length, chunk_size):
    """`length` items cut into chunks of at most `chunk_size` (a positive int) →
    `(chunk size, number of chunks, padding that fills the last chunk)`."""
    chunk_size = int(chunk_size)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}.")
    chunk_size = min(chunk_size, length)
    num_chunks = -(-length // chunk_size)
    return chunk_size, num_chunks, num_chunks * chunk_size - length
