"""The paper's ring sigmoid loss on a JAX device mesh (`shard_map` + `ppermute`).

With the global batch of B pairs split over the n devices of one mesh axis (b = B/n per
device), each device

1. evaluates its local b×b block, which holds its positives;
2. n − 1 times, passes its current text embeddings to the next device on the ring
   (`lax.ppermute`) and adds the negatives-only b×b block of its images against the
   text embeddings it received;
3. the per-device sums are added up (`lax.psum`) and divided by B.

The value equals `sigmoid_loss` on the global batch. Each ring step runs under
`jax.checkpoint`, so the backward pass recomputes its b×b logits instead of keeping
all n of them: per-device loss memory is O(b²) instead of the O(b·B) of the dense
form (only the (b, D) text embeddings of each step are kept for the backward pass).

JAX only: it is the one place where Keras has no API for what the algorithm needs.
`keras_siglip2.losses.resolve_sigmoid_loss` picks it automatically.
"""

import keras
from keras import ops

from keras_siglip2.losses.sigmoid import sigmoid_loss_block


def _default_mesh_and_axis(mesh, axis_name):
    """The JAX mesh and batch axis of the active `keras.distribution`, unless given."""
    if mesh is not None:
        if axis_name is None:
            raise ValueError("ring_sigmoid_loss: pass `axis_name` together with `mesh`.")
        return mesh, axis_name
    distribution = keras.distribution.distribution()
    if distribution is None:
        raise ValueError(
            "ring_sigmoid_loss needs a device mesh: pass `mesh=` (a jax.sharding.Mesh) and "
            "`axis_name=`, or call it under a keras.distribution (e.g. "
            "`keras_siglip2.distribution.data_parallel()`). On one device use `sigmoid_loss`."
        )
    return distribution.device_mesh.backend_mesh, axis_name or distribution.batch_dim_name


def ring_sigmoid_loss(
    image_embeddings, text_embeddings, log_temperature, bias, mesh=None, axis_name=None
):
    """`sigmoid_loss` computed with the ring algorithm over one mesh axis.

    Args:
        image_embeddings: (B, D) L2-normalised image embeddings.
        text_embeddings: (B, D) L2-normalised text embeddings; row i matches image i.
        log_temperature, bias: scalars `t'` and `b`.
        mesh: a `jax.sharding.Mesh`; defaults to the active `keras.distribution`'s.
        axis_name: the mesh axis the batch is split over (the ring); defaults to the
            distribution's batch axis. Other mesh axes see replicated embeddings.

    Returns:
        float32 scalar, equal to `sigmoid_loss(...)` on the global batch.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "ring_sigmoid_loss runs on JAX only (jax.shard_map); use sigmoid_loss or "
            "chunked_sigmoid_loss on other backends."
        )
    import jax
    from jax.sharding import PartitionSpec

    mesh, axis_name = _default_mesh_and_axis(mesh, axis_name)
    if axis_name not in mesh.axis_names:
        raise ValueError(f"Mesh axes are {mesh.axis_names}; there is no axis {axis_name!r}.")
    num_devices = mesh.shape[axis_name]
    image_embeddings, text_embeddings = (
        ops.cast(ops.convert_to_tensor(x), "float32") for x in (image_embeddings, text_embeddings)
    )
    batch = image_embeddings.shape[0]
    if batch != text_embeddings.shape[0]:
        raise ValueError(
            f"ring_sigmoid_loss needs matched pairs: {batch} image and "
            f"{text_embeddings.shape[0]} text embeddings."
        )
    if batch % num_devices:
        raise ValueError(
            f"The global batch of {batch} does not split evenly over the {num_devices} "
            f"devices of mesh axis {axis_name!r}; use a batch size divisible by {num_devices}."
        )
    ring = [(i, (i + 1) % num_devices) for i in range(num_devices)]

    @jax.checkpoint
    def ring_step(carry, _):
        images, texts, temperature, offset_bias, total = carry
        texts = jax.lax.ppermute(texts, axis_name, ring)
        total = total + sigmoid_loss_block(images, texts, temperature, offset_bias, None)
        return (images, texts, temperature, offset_bias, total), None

    def per_device(images, texts, temperature, offset_bias):
        total = jax.checkpoint(sigmoid_loss_block)(images, texts, temperature, offset_bias)
        carry = (images, texts, temperature, offset_bias, total)
        carry, _ = jax.lax.scan(ring_step, carry, None, length=num_devices - 1)
        return jax.lax.psum(carry[-1], axis_name)

    batch_spec = PartitionSpec(axis_name, None)
    scalar_spec = PartitionSpec()
    total = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(batch_spec, batch_spec, scalar_spec, scalar_spec),
        out_specs=scalar_spec,
    )(
        image_embeddings,
        text_embeddings,
        ops.cast(log_temperature, "float32"),
        ops.cast(bias, "float32"),
    )
    return total / float(batch)
