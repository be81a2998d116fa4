"""`fit` under keras.distribution on 8 fake CPU devices: the same loss curve as on
one device, with the weights laid out as `get_layout_map` says."""

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2 import configs, distribution
from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from tests.training.helpers import tiny_model

pytestmark = pytest.mark.multi_device

BATCH = 16
STEPS = 3
LOGS = ("loss", "sigmoid_loss", "temperature", "bias")


@pytest.fixture(scope="module")
def batches():
    model = tiny_model(seed=None)
    stream = training_batches(
        demo_dataset(BATCH * STEPS, seed=0), model, BATCH, seed=0, shuffle_buffer=0
    )
    return [{k: np.asarray(v) for k, v in batch.items()} for batch in stream.take(STEPS)]


@pytest.fixture(scope="module")
def single_device(batches):
    """Initial weights and the one-device loss curve."""
    model = tiny_model(seed=0, locca=False)  # the decoder's layout: see the FSDP test
    initial = model.get_weights()
    return initial, _fit(model, batches)


def _fit(model, batches, **compile_args):
    """Per-step logs of `STEPS` steps (one step per epoch)."""
    model.compile(learning_rate=3e-3, total_steps=10, **compile_args)
    data = tf.data.Dataset.from_tensor_slices(
        {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    )
    history = model.fit(data, epochs=STEPS, steps_per_epoch=1, verbose=0, shuffle=False)
    return history.history


def _distributed_fit(dist, batches, initial, **compile_args):
    with dist.scope():
        model = tiny_model(seed=0, locca=False)
        model.set_weights(initial)
        return model, _fit(model, batches, **compile_args)


def _assert_same_curve(history, reference):
    for name in LOGS:
        np.testing.assert_allclose(history[name], reference[name], atol=1e-4, err_msg=name)
    assert reference["loss"][-1] < reference["loss"][0]  # it trains


def _spec(variable):
    return tuple(variable.value.sharding.spec)


def test_data_parallel_fit_matches_one_device(jax_devices, batches, single_device):
    initial, reference = single_device
    dist = distribution.data_parallel()
    model, history = _distributed_fit(dist, batches, initial)
    _assert_same_curve(history, reference)
    for variable in model.trainable_variables + model.optimizer.variables:
        assert variable.value.sharding.is_fully_replicated, variable.path


def test_model_parallel_fit_matches_one_device(jax_devices, batches, single_device):
    """Mesh 4 (batch) × 2 (model), trained with the row-sharded dense loss (the
    data-parallel test trains with the ring, which "auto" picks)."""
    initial, reference = single_device
    dist = distribution.model_parallel(model_parallel_size=2)
    model, history = _distributed_fit(dist, batches, initial, sigmoid_loss="dense")
    _assert_same_curve(history, reference)
    weights = {v.path: v for v in model.weights}
    expected = {
        "text_encoder/embedding/token_embeddings": ("model", "batch"),
        "vision_encoder/encoder_block_0/attention/query/kernel": ("batch", "model", None),
        "text_encoder/encoder_block_1/attention/attention_output/kernel": ("model", None, "batch"),
        "vision_encoder/map_head/mlp/fc1/kernel": ("batch", "model"),
        "text_encoder/encoder_block_0/mlp/fc2/kernel": ("model", "batch"),
        "vision_encoder/patch_embedding/kernel": (None, "batch"),
    }
    for path, spec in expected.items():
        assert _spec(weights[path]) == spec, path
    for path in ("vision_encoder/final_norm/gamma", "logit_head/bias"):
        assert weights[path].value.sharding.is_fully_replicated, path
    # Adam's moments follow their variable's layout.
    by_shape_and_spec = {(v.shape, _spec(v)) for v in model.trainable_variables}
    for moment in model.optimizer.variables:
        if len(moment.shape) >= 2:
            assert (moment.shape, _spec(moment)) in by_shape_and_spec, moment.path


def test_fsdp_shards_every_large_weight_and_the_teacher_like_its_student(jax_devices):
    """Mesh 8 × 1: every matrix of ≥ 256 values is split over the 8 devices, and the
    EMA teacher's tower and heads get exactly their student's layout."""
    settings = dict(
        num_prototypes=64, num_patch_prototypes=32, head_hidden_dim=64, head_bottleneck_dim=16
    )
    with distribution.fully_sharded().scope():
        model = SigLIP2(SigLIP2Backbone.from_config(configs.tiny()), self_supervised=settings)
    weights = {v.path: v for v in model.weights}
    teacher = {path: v for path, v in weights.items() if path.startswith("teacher_")}
    assert len(teacher) > 40
    for path, variable in teacher.items():
        student = weights[path.removeprefix("teacher_")]
        assert _spec(variable) == _spec(student), path
    assert _spec(weights["locca_decoder/token_embeddings"]) == ("model", "batch")
    key_kernel = weights["locca_decoder/decoder_block_0/cross_attention/key/kernel"]
    assert _spec(key_kernel) == ("batch", "model", None)
    large = [v for v in model.weights if len(v.shape) >= 2 and np.prod(v.shape) >= 256]
    assert len(large) > 50
    for variable in large:
        assert not variable.value.sharding.is_fully_replicated, variable.path
