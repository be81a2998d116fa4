"""Dense, chunked and ring sigmoid losses on 8 fake CPU devices (JAX)."""

import math

import keras
import numpy as np
import pytest

from keras_siglip2 import distribution, losses
from keras_siglip2.losses import ring_sigmoid_loss, sigmoid_loss
from tests.losses.test_sigmoid_loss import _normalised, _numpy_sigmoid_loss

pytestmark = pytest.mark.multi_device

TOLERANCE = 1e-5
KINDS = ("dense", "chunked", "ring")


def _pairs(batch, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    image, text = _normalised(rng, (batch, dim)), _normalised(rng, (batch, dim))
    text[::3] = image[::3]  # a few confident positives
    return image, text, np.float32(math.log(10.0)), np.float32(-5.0)


def _value_and_grads(kind, args, dist):
    """jit(value_and_grad) of `losses.global_sigmoid_loss(kind)` under `dist`, with
    the embeddings placed split over the batch axis as `fit` would place them."""
    import jax

    def loss(*a):
        return losses.global_sigmoid_loss(*a, kind=kind, chunk_size=24)

    with dist.scope():
        layout = dist.get_data_layout(args[0].shape)
        embeddings = [keras.distribution.distribute_tensor(a, layout) for a in args[:2]]
        value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(
            *embeddings, *args[2:]
        )
    return float(value), [np.asarray(g) for g in grads]


def test_three_losses_agree_on_eight_devices(jax_devices):
    args = _pairs(64)
    dist = distribution.data_parallel()
    results = {kind: _value_and_grads(kind, args, dist) for kind in KINDS}
    expected = _numpy_sigmoid_loss(*args)
    for kind, (value, grads) in results.items():
        assert value == pytest.approx(expected, rel=TOLERANCE), kind
        for got, reference in zip(grads, results["dense"][1]):
            assert np.abs(reference).max() > 1e-3
            np.testing.assert_allclose(got, reference, atol=TOLERANCE, err_msg=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_is_invariant_to_device_count(jax_devices, kind):
    args = _pairs(48)
    values = {
        n: _value_and_grads(kind, args, distribution.data_parallel(jax_devices[:n]))
        for n in (1, 2, 4, 8)
    }
    for n, (value, grads) in values.items():
        assert value == pytest.approx(values[1][0], rel=TOLERANCE), n
        for got, reference in zip(grads, values[1][1]):
            np.testing.assert_allclose(got, reference, atol=TOLERANCE, err_msg=str(n))


def test_ring_on_a_batch_by_model_mesh(jax_devices):
    """Under ModelParallel (mesh 4 × 2) the ring runs over the 4-device batch axis."""
    args = _pairs(32)
    dist = distribution.model_parallel(model_parallel_size=2)
    assert dist.device_mesh.shape == (4, 2)
    value, _ = _value_and_grads("ring", args, dist)
    assert value == pytest.approx(_numpy_sigmoid_loss(*args), rel=TOLERANCE)


def test_auto_picks_the_ring_only_on_several_devices(jax_devices):
    assert losses.resolve_sigmoid_loss("auto", 64) == "dense"  # no distribution
    with distribution.data_parallel().scope():
        assert losses.resolve_sigmoid_loss("auto", 64) == "ring"
        assert losses.resolve_sigmoid_loss("auto", 12) == "dense"  # 12 % 8 != 0
        assert losses.resolve_sigmoid_loss("chunked", 64) == "chunked"
    with distribution.data_parallel(jax_devices[:1]).scope():
        assert losses.resolve_sigmoid_loss("auto", 64) == "dense"
    with pytest.raises(ValueError, match="one of"):
        losses.resolve_sigmoid_loss("blockwise", 64)


def test_ring_errors_say_what_to_do(jax_devices):
    args = _pairs(12)
    with pytest.raises(ValueError, match="needs a device mesh"):
        ring_sigmoid_loss(*args)
    with distribution.data_parallel().scope():
        with pytest.raises(ValueError, match="divisible by 8"):
            ring_sigmoid_loss(*args)
    with pytest.raises(ValueError, match="matched pairs"):
        with distribution.data_parallel().scope():
            ring_sigmoid_loss(args[0][:8], args[1], *args[2:])


def test_dense_logits_are_split_by_rows(jax_devices):
    """The sharding constraint: even from replicated embeddings (which GSPMD would
    otherwise score whole on every device) no device holds the B × B logits."""
    import jax

    batch = 512
    embeddings = jax.ShapeDtypeStruct((batch, 16), "float32")  # no sharding: replicated
    scalar = jax.ShapeDtypeStruct((), "float32")

    def temp_bytes():  # a fresh jit each time: the trace depends on the distribution
        step = jax.jit(jax.value_and_grad(sigmoid_loss, argnums=(0, 1)))
        compiled = step.lower(embeddings, embeddings, scalar, scalar).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    with distribution.data_parallel().scope():
        assert temp_bytes() < batch * batch * 4 / 2
    # Without a distribution it is the plain dense loss: B × B logits and more.
    assert temp_bytes() >= batch * batch * 4

