"""Distributed training: device meshes, weight layouts, and the sigmoid loss to use.

JAX (`keras.distribution`), one host or many:

    import keras_siglip2 as ks
    keras.distribution.initialize()              # multi-host only: once per process, first
    keras.distribution.set_distribution(ks.distribution.data_parallel())
    # or ks.distribution.model_parallel(model_parallel_size=2)   (mesh batch × model)
    # or ks.distribution.fully_sharded()                         (FSDP: mesh n × 1)
    model = ks.SigLIP2.from_config(...)          # variables are created sharded
    model.compile(sigmoid_loss="auto")           # the ring loss on > 1 device
    model.fit(batches)                           # global batch, split over "batch"

TensorFlow (`tf.distribute`): build and compile under `strategy.scope()`; the sigmoid
loss gathers the text embeddings of all replicas, so every image still sees all B − 1
negatives of the global batch (`replica_sigmoid_loss`). See docs/distributed.md.
"""

import keras

from keras_siglip2 import losses
from keras_siglip2.losses.ring import ring_sigmoid_loss

SIGMOID_LOSSES = ("auto", "dense", "chunked", "ring")
DATA_DIM = "batch"
MODEL_DIM = "model"


def _require_jax(what):
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"{what} uses keras.distribution, which runs on JAX only (this is "
            f"{keras.backend.backend()!r}). On TensorFlow use tf.distribute (e.g. "
            "MirroredStrategy); see docs/distributed.md."
        )


def device_mesh(model_parallel_size=1, devices=None):
    """A `(n / model_parallel_size, model_parallel_size)` mesh with axes
    `("batch", "model")` over `devices` (default: every device of every host)."""
    _require_jax("device_mesh")
    devices = list(devices or keras.distribution.list_devices())
    if model_parallel_size < 1 or len(devices) % model_parallel_size:
        raise ValueError(
            f"model_parallel_size={model_parallel_size} must be ≥ 1 and divide the "
            f"{len(devices)} devices."
        )
    shape = (len(devices) // model_parallel_size, model_parallel_size)
    return keras.distribution.DeviceMesh(shape, (DATA_DIM, MODEL_DIM), devices)


def data_parallel(devices=None):
    """Replicated weights, batch split over all devices (`keras.distribution.DataParallel`)."""
    _require_jax("data_parallel")
    return keras.distribution.DataParallel(devices=list(devices or keras.distribution.list_devices()))


def model_parallel(model_parallel_size=2, devices=None):
    """`ModelParallel` over a `(n / model_parallel_size, model_parallel_size)` mesh with
    `SigLIP2Backbone.get_layout_map`: heads, MLP units and vocabulary split over
    "model", widths sharded over "batch" (FSDP-style), the batch split over "batch"."""
    from keras_siglip2.models.backbone import SigLIP2Backbone

    mesh = device_mesh(model_parallel_size, devices)
    layout_map = SigLIP2Backbone.get_layout_map(mesh, model_dim=MODEL_DIM, data_dim=DATA_DIM)
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name=DATA_DIM)


def fully_sharded(devices=None):
    """FSDP-style: every large weight (and its optimizer state) split over all
    devices along its width, the batch split too; `model_parallel` on an `(n, 1)` mesh."""
    return model_parallel(1, devices)


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


def sigmoid_loss(
    image_embeddings, text_embeddings, log_temperature, bias, kind="auto", chunk_size=1024
):
    """The SigLIP loss of the global batch, computed the way `kind` says.

    `kind`: "dense" (`losses.sigmoid_loss`), "chunked" (`losses.chunked_sigmoid_loss`
    with `chunk_size`), "ring" (`losses.ring_sigmoid_loss`, JAX + keras.distribution)
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
        return losses.sigmoid_loss(image_embeddings, text_embeddings, log_temperature, bias)
    return losses.chunked_sigmoid_loss(
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
    total = losses.sigmoid_nll_sum(
        image_embeddings, all_texts, log_temperature, bias,
        first_row=first_row, chunk_size=chunk_size,
    )
    return total / tf.cast(local_batch, "float32")


# ------------------------------------------------------------------ memory arithmetic
def locca_decoder_parameters(text, num_coordinate_bins=1000, vision_width=None):
    """Parameters of the LocCa decoder `SigLIP2` attaches for a text-tower config
    (`max(1, depth // 2)` layers, tied output projection), by arithmetic.
    `vision_width`: the image tower's width when the decoder adds memory
    positions (the default in `SigLIP2`), None without them."""
    from keras_siglip2.models.heads import POSITION_FREQUENCIES

    d, f = text["hidden_dim"], text["intermediate_dim"]
    vocabulary = text["vocabulary_size"] + num_coordinate_bins
    attention = 4 * (d * d + d)
    block = 2 * attention + (2 * d * f + f + d) + 3 * 2 * d
    tables = (vocabulary + text["sequence_length"] + 3 + 1) * d + vocabulary
    memory_positions = 4 * POSITION_FREQUENCIES * vision_width if vision_width else 0
    return max(1, text["num_layers"] // 2) * block + 2 * d + tables + memory_positions


def training_state_bytes_per_device(
    parameters, num_shards=1, bytes_per_value=4, optimizer_slots=2
):
    """Bytes per device of weights, gradients and Adam's two moments (all float32,
    also under `mixed_bfloat16`) when every weight is split `num_shards` ways.

    Activations come on top and depend on the batch. Under `model_parallel` /
    `fully_sharded` the layout map shards all but the LayerNorms and a few biases
    (< 0.1 % of a So400m), so `num_shards` = number of devices is accurate to
    that; under `data_parallel` use 1.
    """
    return parameters * bytes_per_value * (2 + optimizer_slots) / num_shards


def checkpoint_parameters(name, locca=True, num_coordinate_bins=1000):
    """Training parameter count of a released architecture (alias or name):
    backbone plus, with `locca`, the LocCa decoder."""
    from keras_siglip2 import configs

    config = configs.checkpoint_config(name)
    count = configs.count_parameters(config)
    if locca:
        count += locca_decoder_parameters(
            config["text"], num_coordinate_bins, vision_width=config["vision"]["hidden_dim"]
        )
    return count


def scale_loss_for_replicas(loss):
    """`loss / R` inside an R-replica `tf.distribute` step (Keras sums the replicas'
    gradients), else `loss`. `SigLIP2.compute_loss` returns the scaled total."""
    context = _tf_replica_context()
    if context is None:
        return loss
    return loss * (1.0 / context.num_replicas_in_sync)
