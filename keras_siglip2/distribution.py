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
negatives of the global batch (`losses.replica_sigmoid_loss`). See docs/distributed.md.

This module holds meshes and layouts only; the sigmoid loss of the global batch is
`keras_siglip2.losses.global_sigmoid_loss`, and the memory arithmetic is in
`keras_siglip2.configs`.
"""

import keras

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
