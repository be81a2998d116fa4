"""TensorFlow `MirroredStrategy` on 2 logical CPU devices: global negatives
(text embeddings gathered across replicas) and Keras' loss scaling give exactly
the single-device global-batch loss and update."""

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2 import losses
from integration.multi_device.test_jax_fit import BATCH, STEPS, batches  # noqa: F401 (fixture)
from tests.losses.test_sigmoid_loss import _normalised, _numpy_sigmoid_loss
from tests.training.helpers import tiny_model

pytestmark = pytest.mark.multi_device


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_replica_loss_is_the_global_loss(tf_devices, chunk_size):
    rng = np.random.default_rng(0)
    image, text = _normalised(rng, (8, 6)), _normalised(rng, (8, 6))
    strategy = tf.distribute.MirroredStrategy(tf_devices)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((image, text)).batch(8, drop_remainder=True)
    )
    log_temperature, bias = tf.constant(0.5), tf.constant(-1.0)

    def replica_step(pair):
        local_image, local_text = pair
        with tf.GradientTape() as tape:
            tape.watch(local_text)
            loss = losses.replica_sigmoid_loss(
                local_image, local_text, log_temperature, bias, chunk_size=chunk_size
            )
            scaled = losses.scale_loss_for_replicas(loss)
        return loss, tape.gradient(scaled, local_text)

    replica_losses, grads = strategy.run(tf.function(replica_step), args=(next(iter(dataset)),))
    replica_losses = [float(x) for x in strategy.experimental_local_results(replica_losses)]
    grads = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads)])
    np.testing.assert_allclose(np.mean(replica_losses), _numpy_sigmoid_loss(image, text, 0.5, -1.0),
                               rtol=1e-5)
    assert replica_losses[0] != pytest.approx(replica_losses[1])  # each replica scores its own rows

    with tf.GradientTape() as tape:
        text_variable = tf.constant(text)
        tape.watch(text_variable)
        loss = losses.global_sigmoid_loss(image, text_variable, log_temperature, bias, kind="dense")
    # The gathered texts' gradient reaches the replica that computed them.
    np.testing.assert_allclose(grads, tape.gradient(loss, text_variable).numpy(), atol=1e-6)


def test_mirrored_fit_matches_one_device(tf_devices, batches):  # noqa: F811
    # Keras' symbolic build under a strategy averages one batch across replicas,
    # which TF cannot do for bool tensors (`captioning_parallel`): send int32.
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    data = tf.data.Dataset.from_tensor_slices(
        {k: v.astype("int32") if v.dtype == bool else v for k, v in stacked.items()}
    )

    def fit(model):
        # Keras clips each replica's partial gradient before summing them (not
        # the global gradient), so clipping is off here; see docs/distributed.md.
        model.compile(learning_rate=3e-3, total_steps=10, global_clipnorm=None)
        history = model.fit(data, epochs=STEPS, steps_per_epoch=1, verbose=0, shuffle=False)
        return history.history, model.get_weights()

    single = tiny_model(seed=0, locca=False)
    initial = single.get_weights()
    reference, reference_weights = fit(single)
    strategy = tf.distribute.MirroredStrategy(tf_devices)
    with strategy.scope():
        mirrored = tiny_model(seed=0, locca=False)
        mirrored.set_weights(initial)
        history, weights = fit(mirrored)
    assert BATCH % strategy.num_replicas_in_sync == 0
    for name in ("loss", "sigmoid_loss"):
        np.testing.assert_allclose(history[name], reference[name], atol=1e-4, err_msg=name)
    for got, expected in zip(weights, reference_weights):
        np.testing.assert_allclose(got, expected, atol=1e-4)
