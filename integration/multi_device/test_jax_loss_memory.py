"""Per-device temporary memory of compiled (never executed) steps on 8 fake CPU
devices: the ring loss needs O(b²) per device, the dense loss O(b·B).

`python -m integration.multi_device.test_jax_loss_memory` (with the XLA_FLAGS of
conftest.py) prints the report that docs/distributed.md quotes."""

import jax
import numpy as np
import pytest

from keras_siglip2 import configs, distribution, losses
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2

pytestmark = pytest.mark.multi_device

PER_DEVICE = 1024
WIDTH = 64


def loss_temp_bytes(kind, devices, per_device=PER_DEVICE):
    """Temp bytes per device of jit(value_and_grad(loss)) over `devices`."""
    dist = distribution.data_parallel(devices)
    batch = per_device * len(devices)

    def loss(*args):
        return losses.global_sigmoid_loss(*args, kind=kind)

    with dist.scope():
        sharding = dist.get_data_layout((batch, WIDTH)).backend_layout
        embeddings = jax.ShapeDtypeStruct((batch, WIDTH), "float32", sharding=sharding)
        scalar = jax.ShapeDtypeStruct((), "float32")
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))
        compiled = step.lower(embeddings, embeddings, scalar, scalar).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def train_step_temp_bytes(kind, devices, per_device=PER_DEVICE):
    """Temp bytes per device of the compiled Keras train step (forward, backward,
    AdamW update) of a one-layer tiny SigLIP2 (one patch, 4 tokens, so that the
    towers' activations do not hide the loss) under DataParallel."""
    dist = distribution.data_parallel(devices)
    batch = per_device * len(devices)
    config = configs.tiny(image_size=8, patch_size=8)
    for tower in config.values():
        tower["num_layers"] = 1
    config["text"]["sequence_length"] = 4
    with dist.scope():
        model = SigLIP2(SigLIP2Backbone.from_config(config), locca=False)
        model.compile(sigmoid_loss=kind, total_steps=10)
        model.optimizer.build(model.trainable_variables)

        def abstract(variables):
            return [
                jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.value.sharding)
                for v in variables
            ]

        state = tuple(
            abstract(variables)
            for variables in (
                model.trainable_variables, model.non_trainable_variables,
                model.optimizer.variables, model.metrics_variables,
            )
        )
        shapes = {"images": ((batch, 8, 8, 3), "float32"), "token_ids": ((batch, 4), "int32")}
        data = {
            name: jax.ShapeDtypeStruct(
                shape, dtype, sharding=dist.get_data_layout(shape).backend_layout
            )
            for name, (shape, dtype) in shapes.items()
        }
        compiled = jax.jit(model.train_step).lower(state, (data,)).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_ring_loss_memory_scales_with_b_squared(jax_devices):
    dense = {n: loss_temp_bytes("dense", jax_devices[:n]) for n in (2, 8)}
    ring = {n: loss_temp_bytes("ring", jax_devices[:n]) for n in (2, 8)}
    ring_half = loss_temp_bytes("ring", jax_devices, PER_DEVICE // 2)
    block = PER_DEVICE * PER_DEVICE * 4  # one b × b float32 block
    # Dense: (b, B) logits per device, so 4× the devices is ~4× the memory.
    assert dense[8] >= 8 * block and dense[8] > 3.5 * dense[2], dense
    # Ring: a few b × b blocks per device, whatever the number of devices …
    assert ring[8] < 6 * block and ring[8] < 1.5 * ring[2], ring
    assert dense[8] > 4 * ring[8]
    # … and quadratic in b: half the per-device batch, about a quarter of the memory.
    assert 2.5 < ring[8] / ring_half < 4.5, (ring[8], ring_half)


def test_train_step_memory_dense_vs_ring(jax_devices):
    dense = train_step_temp_bytes("dense", jax_devices)
    ring = train_step_temp_bytes("ring", jax_devices)
    logits = PER_DEVICE * PER_DEVICE * len(jax_devices) * 4  # (b, B) float32 per device
    # The dense step holds (b, B) logits and their gradient; the ring step does not.
    assert dense - ring > 2 * logits, (dense, ring)
    assert ring < dense / 2, (dense, ring)


def report():
    devices = jax.devices()
    mib = 2**20
    print(f"{len(devices)} devices, b = {PER_DEVICE} per device (B = {PER_DEVICE * len(devices)})")
    for kind in ("dense", "chunked", "ring"):
        loss = loss_temp_bytes(kind, devices) / mib
        print(f"  {kind:8s} loss value+grad temp/device: {loss:8.1f} MiB")
    for kind in ("dense", "ring"):
        step = train_step_temp_bytes(kind, devices) / mib
        print(f"  {kind:8s} tiny-model train step temp/device: {step:8.1f} MiB")
    for n in (2, 4, 8):
        sizes = [loss_temp_bytes(k, devices[:n]) / mib for k in ("dense", "ring")]
        print(f"  {n} devices: dense {sizes[0]:7.1f} MiB, ring {sizes[1]:7.1f} MiB")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    report()
