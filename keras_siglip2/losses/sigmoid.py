"""The SigLIP sigmoid image–text loss: dense, and chunked over the text batch.

For B matched pairs with L2-normalised embeddings,

    logit_ij = img_i · txt_j · exp(t') + b
    L = -(1/B) Σ_i Σ_j log σ(z_ij · logit_ij),   z = +1 if i == j else -1.

Every pair is an independent binary problem, so the B×B sum splits into blocks of
columns (text embeddings) that can be evaluated one after the other. The chunked form
below never holds more than one (B, chunk) block of logits and recomputes each block in
the backward pass (`keras.remat`), so the activation memory is O(B·chunk) instead of
O(B²) — the single-device version of the paper's ring formulation. `sigmoid_loss_block`
is the building block of the ring (device-to-device) implementation in `losses/ring.py`.

Under a multi-device `keras.distribution` (JAX) the dense loss keeps its B×B logits
split by rows over the batch axis (a sharding constraint), so each device holds
(B/n, B) of them; the ring needs only (B/n, B/n).

All arithmetic is float32 whatever the input dtype; `-log σ(x)` is evaluated with the
stable log-sigmoid of each backend.
"""

import keras
from keras import ops

from keras_siglip2.losses.chunking import chunk_layout, static_fori_loop


def _as_float32(*tensors):
    return [ops.cast(ops.convert_to_tensor(t), "float32") for t in tensors]


def _block_nll_sum(
    image_embeddings,
    text_embeddings,
    log_temperature,
    bias,
    first_column,
    num_columns=None,
    shard_rows=False,
    first_row=0,
):
    """Σ over one (B_img, C) block of `-log σ(z · logit)`.

    `first_row` and `first_column` are the global indices of this block's first
    image and text; the positive pairs are the entries whose global row and column
    indices are equal. Columns whose global index is `>= num_columns` (zero padding)
    are left out. All tensors are explicit arguments (no closures) so that every
    backend's rematerialisation sees — and differentiates with respect to — every
    one of them. `shard_rows`: see `_shard_rows_over_batch_axis`.
    """
    logits = ops.matmul(image_embeddings, ops.transpose(text_embeddings))
    if shard_rows:
        logits = _shard_rows_over_batch_axis(logits)
    logits = logits * ops.exp(log_temperature) + bias
    rows = ops.arange(ops.shape(image_embeddings)[0], dtype="int32") + ops.cast(
        first_row, "int32"
    )
    columns = ops.arange(ops.shape(text_embeddings)[0], dtype="int32") + ops.cast(
        first_column, "int32"
    )
    positive = ops.equal(ops.expand_dims(rows, 1), ops.expand_dims(columns, 0))
    signs = ops.where(positive, 1.0, -1.0)
    nll = -ops.log_sigmoid(signs * logits)
    if num_columns is not None:
        nll = ops.where(ops.expand_dims(columns < num_columns, 0), nll, 0.0)
    return ops.sum(nll)


def _shard_rows_over_batch_axis(logits):
    """Under a multi-device `keras.distribution` (JAX), constrain the `(B_img, B_txt)`
    logits to be split by rows over the batch axis; otherwise return them unchanged."""
    distribution = keras.distribution.distribution()
    if distribution is None or keras.backend.backend() != "jax":
        return logits
    mesh = distribution.device_mesh
    axis = distribution.batch_dim_name
    devices = dict(zip(mesh.axis_names, mesh.shape))[axis]
    rows = logits.shape[0]
    if devices == 1 or not isinstance(rows, int) or rows % devices:
        return logits
    layout = keras.distribution.TensorLayout([axis, None], mesh)
    return keras.distribution.distribute_tensor(logits, layout)


def sigmoid_loss_block(
    image_embeddings, text_embeddings, log_temperature, bias, positive_offset=0
):
    """Summed (not averaged) sigmoid NLL of one block of pairs.

    Args:
        image_embeddings: (B_img, D) normalised image embeddings.
        text_embeddings: (C, D) normalised text embeddings.
        log_temperature, bias: scalars `t'` and `b`.
        positive_offset: global index of the first text row: the pair (i, j) is
            positive iff `i == j + positive_offset`. `None` means the block holds
            negatives only (e.g. text embeddings received from another device).

    Returns:
        float32 scalar `Σ_ij -log σ(z_ij · logit_ij)`; divide the total by B.
    """
    image_embeddings, text_embeddings, log_temperature, bias = _as_float32(
        image_embeddings, text_embeddings, log_temperature, bias
    )
    if positive_offset is None:
        logits = ops.matmul(image_embeddings, ops.transpose(text_embeddings))
        logits = logits * ops.exp(log_temperature) + bias
        return -ops.sum(ops.log_sigmoid(-logits))
    return _block_nll_sum(
        image_embeddings, text_embeddings, log_temperature, bias, positive_offset
    )


def sigmoid_loss(image_embeddings, text_embeddings, log_temperature, bias):
    """Dense SigLIP loss for B matched pairs.

    Args:
        image_embeddings: (B, D) L2-normalised image embeddings (any float dtype).
        text_embeddings: (B, D) L2-normalised text embeddings; row i matches image i.
        log_temperature: scalar `t'` (the logit scale is `exp(t')`).
        bias: scalar `b`.

    Returns:
        float32 scalar `-(1/B) Σ_i Σ_j log σ(z_ij · logit_ij)` — the same value as
        big_vision's and transformers' SigLIP loss.
    """
    batch = ops.shape(text_embeddings)[0]
    total = sigmoid_nll_sum(image_embeddings, text_embeddings, log_temperature, bias)
    return total / ops.cast(batch, "float32")


def chunked_sigmoid_loss(
    image_embeddings, text_embeddings, log_temperature, bias, chunk_size=1024
):
    """`sigmoid_loss` evaluated `chunk_size` text embeddings at a time.

    Same value and gradients as `sigmoid_loss`, but only one (B, chunk_size) block of
    logits exists at a time: the blocks are visited by a loop with a static trip count
    (`losses.chunking.static_fori_loop`: compiled on JAX and TensorFlow, Python on
    torch) and each block is wrapped in `keras.remat`, so the backward pass recomputes
    it instead of storing it (`jax.checkpoint`, `tf.recompute_grad`,
    `torch.utils.checkpoint`).

    The batch size must be static. If it is not a multiple of `chunk_size` the text
    embeddings are zero-padded and the padded columns are masked out; if it is not
    larger than `chunk_size` this is the dense loss.
    """
    total = sigmoid_nll_sum(
        image_embeddings, text_embeddings, log_temperature, bias, chunk_size=chunk_size
    )
    return total / float(text_embeddings.shape[0])


def sigmoid_nll_sum(
    image_embeddings, text_embeddings, log_temperature, bias, first_row=0, chunk_size=None
):
    """Σ_ij `-log σ(z_ij · logit_ij)` of some images against all B text embeddings.

    Args:
        image_embeddings: (b, D) normalised embeddings of the images
            `first_row … first_row + b − 1` of the global batch (b = B for one device).
        text_embeddings: (B, D) normalised text embeddings of the whole batch.
        log_temperature, bias: scalars.
        first_row: global index of the first image (an int or int tensor, e.g.
            `replica_id · b` when each replica holds b images).
        chunk_size: `None` evaluates all (b, B) logits at once (under a multi-device
            `keras.distribution` they are split by rows over the batch axis); an int
            visits `chunk_size` text columns at a time, rematerialised (see
            `chunked_sigmoid_loss`; needs a static B).

    Returns:
        float32 scalar sum; `sigmoid_loss` divides it by B.
    """
    image_embeddings, text_embeddings, log_temperature, bias = _as_float32(
        image_embeddings, text_embeddings, log_temperature, bias
    )
    batch, dim = text_embeddings.shape
    if chunk_size is None or (batch is not None and batch <= int(chunk_size)):
        return _block_nll_sum(
            image_embeddings, text_embeddings, log_temperature, bias, 0,
            shard_rows=True, first_row=first_row,
        )
    if batch is None or dim is None:
        raise ValueError(
            "The chunked sigmoid loss needs a static batch size and width, got "
            f"text_embeddings.shape={text_embeddings.shape}."
        )
    chunk_size, num_chunks, padding = chunk_layout(batch, chunk_size)

    def block(image, text, temperature, offset_bias, first_column, first_image):
        return _block_nll_sum(
            image, text, temperature, offset_bias, first_column, batch if padding else None,
            first_row=first_image,
        )

    remat_block = keras.remat(block)
    if padding:
        text_embeddings = ops.pad(text_embeddings, [[0, padding], [0, 0]])
    # The offsets travel as floats so that `tf.recompute_grad` only ever watches
    # float tensors (exact: float32 holds integers up to 2**24).
    first_row = ops.cast(first_row, "float32")

    def body(index, total):
        start = index * chunk_size
        chunk = ops.slice(text_embeddings, [start, 0], [chunk_size, dim])
        start = ops.cast(start, "float32")
        return total + remat_block(
            image_embeddings, chunk, log_temperature, bias, start, first_row
        )

    return static_fori_loop(num_chunks, body, ops.zeros((), "float32"))
