"""The sigmoid loss of the global batch, under whatever distribution is active.

One signature, three implementations (SPEC §3.1): dense, chunked over the text
batch, and the ring (JAX `keras.distribution`, `losses/ring.py`). Inside a
multi-replica `tf.distribute` step the dense and chunked forms gather the text
embeddings of every replica, so each image still sees all B − 1 negatives
(`replica_sigmoid_loss`), and `scale_loss_for_replicas` divides the step's loss
by the replica count (Keras sums the replicas' gradients).
"""

import keras

from keras_siglip2.losses.ring import ring_sigmoid_loss
from keras_siglip2.losses.sigmoid import chunked_sigmoid_loss, sigmoid_loss, sigmoid_nll_sum

SIGMOID_LOSSES = ("auto", "dense", "chunked", "ring")


def _batch_axis_devices():
    """Devices the batch is split over under the active keras.distribution (JAX), else 1."""
    distribution = keras.distribution.distribution()
    if distribution is None or keras.backend.backend() != "jax":
        return 1
    mesh = distribution.device_mesh
    return dict(zip(mesh.axis_names, mesh.shape))[distribution.batch_dim_name]


def _tf_replica_context():
    """The replica context of a multi-replica `tf.distribute` step, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def resolve_sigmoid_loss(kind="auto", batch_size=None):
    """Which implementation `kind` means here: "dense", "chunked" or "ring".

    "auto" is the ring under a JAX `keras.distribution` whose batch axis has more
    than one device (when the static `batch_size` splits evenly over it), else dense.
    """
    if kind not in SIGMOID_LOSSES:
        raise ValueError(f"sigmoid_loss must be one of {SIGMOID_LOSSES}; got {kind!r}.")
    if kind != "auto":
        return kind
    devices = _batch_axis_devices()
    if devices > 1 and isinstance(batch_size, int) and batch_size % devices == 0:
        return "ring"
    return "dense"


def global_sigmoid_loss(
    image_embeddings, text_embeddings, log_temperature, bias, kind="auto", chunk_size=1024
):
    """The SigLIP loss of the global batch, computed the way `kind` says.

    `kind`: "dense" (`sigmoid_loss`), "chunked" (`chunked_sigmoid_loss` with
    `chunk_size`), "ring" (`ring_sigmoid_loss`, JAX + keras.distribution)
    or "auto" (`resolve_sigmoid_loss`). Inside a multi-replica `tf.distribute` step,
    dense and chunked use global negatives (`replica_sigmoid_loss`).
    Shapes: `(B, D)`, `(B, D)`, scalars → float32 scalar.
    """
    kind = resolve_sigmoid_loss(kind, image_embeddings.shape[0])
    if kind == "ring":
        return ring_sigmoid_loss(image_embeddings, text_embeddings, log_temperature, bias)
    chunks = chunk_size if kind == "chunked" else None
    if _tf_replica_context() is not None:
        return replica_sigmoid_loss(
            image_embeddings, text_embeddings, log_temperature, bias, chunk_size=chunks
        )
    if chunks is None:
        return sigmoid_loss(image_embeddings, text_embeddings, log_temperature, bias)
    return chunked_sigmoid_loss(
        image_embeddings, text_embeddings, log_temperature, bias, chunk_size=chunks
    )


def replica_sigmoid_loss(
    image_embeddings, text_embeddings, log_temperature, bias, chunk_size=None
):
    """Global-negatives sigmoid loss inside one replica of a `tf.distribute` step.

    Each of the R replicas holds b = B/R pairs. The text embeddings of all replicas
    are gathered (`all_gather`, differentiable: the gradient reaches the replica
    that computed them), and the replica's b images are scored against all B texts.
    Returns the replica's rows summed and divided by b: the mean over replicas is
    the global loss, so with Keras' `1/R` loss scaling and summed gradients
    (`SigLIP2.compute_loss`) training follows the global-batch loss exactly.
    Every replica must hold the same b (batch with `drop_remainder=True`).
    """
    context = _tf_replica_context()
    if context is None:
        raise ValueError("replica_sigmoid_loss runs inside a multi-replica tf.distribute step.")
    import tensorflow as tf

    local_batch = tf.shape(image_embeddings)[0]
    all_texts = context.all_gather(tf.cast(text_embeddings, "float32"), axis=0)
    # all_gather forgets static shapes; the chunked loss needs them.
    rows, width = text_embeddings.shape
    if rows is not None:
        all_texts = tf.ensure_shape(all_texts, (rows * context.num_replicas_in_sync, width))
    first_row = context.replica_id_in_sync_group * local_batch
    total = sigmoid_nll_sum(
        image_embeddings, all_texts, log_temperature, bias,
        first_row=first_row, chunk_size=chunk_size,
    )
    return total / tf.cast(local_batch, "float32")


def scale_loss_for_replicas(loss):
    """`loss / R` inside an R-replica `tf.distribute` step (Keras sums the replicas'
    gradients), else `loss`. `SigLIP2.compute_loss` returns the scaled total."""
    context = _tf_replica_context()
    if context is None:
        return loss
    return loss * (1.0 / context.num_replicas_in_sync)
