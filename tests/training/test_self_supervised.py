"""Self-distillation and masked prediction: views, EMA teacher, centres, switch-on."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.layers.embeddings import NaFlexPositionEmbedding
from keras_siglip2.layers.embeddings import resize_square_table
from keras_siglip2.models.self_supervised import PrototypeHead, ema_update
from keras_siglip2.preprocessing.views import local_crops, patch_drop_mask
from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model

SWITCH_ON = 2


def _numpy(x):
    return np.array(ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def model_and_batch():
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    batch = first_batch(training_batches(demo_dataset(16, seed=0), model, 8, seed=0))
    return model, batch


def test_views_in_the_batch(model_and_batch):
    model, batch = model_and_batch
    size = TINY_SELF_SUPERVISED["local_view_patches"] * 8
    assert batch["local_images"].shape == (8, 8, size, size, 3)
    assert -1.0 <= batch["local_images"].min() and batch["local_images"].max() <= 1.0
    real = batch["patch_mask"].sum(axis=1)
    assert (real < 16).any(), "the demo batch should contain padded NaFlex examples"
    dropped = batch["patch_drop_mask"]
    np.testing.assert_array_equal(dropped.sum(axis=1), real // 2)
    assert not (dropped & ~batch["patch_mask"]).any(), "padding must never be masked"


def test_patch_drop_mask_is_exactly_half_and_seeded():
    mask = tf.constant([True] * 11 + [False] * 5)
    first = patch_drop_mask(mask, tf.constant([1, 2]))
    again = patch_drop_mask(mask, tf.constant([1, 2]))
    other = patch_drop_mask(mask, tf.constant([1, 3]))
    assert int(tf.reduce_sum(tf.cast(first, tf.int32))) == 5
    assert not bool(tf.reduce_any(first[11:]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_local_crops_have_the_requested_area_and_aspect():
    # Channel 0 encodes x, channel 1 encodes y: a crop's value span is its box.
    height, width = 120, 240
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([x * 255.0 / (width - 1), y * 255.0 / (height - 1), 0 * x], axis=-1)
    crops = local_crops(tf.constant(image, tf.float32), 8, 32, tf.constant([0, 1]))
    crops = (crops.numpy() + 1.0) / 2.0  # back to [0, 1] of the image side
    assert crops.shape == (8, 32, 32, 3)
    span_x = crops[..., 0].max(axis=(1, 2)) - crops[..., 0].min(axis=(1, 2))
    span_y = crops[..., 1].max(axis=(1, 2)) - crops[..., 1].min(axis=(1, 2))
    area = span_x * span_y  # minus one output pixel of sampling on each side
    assert np.all((area > 0.04) & (area < 0.42)), area
    aspect = (span_x * width) / (span_y * height)
    assert np.all((aspect > 0.7) & (aspect < 1.42)), aspect
    assert len(np.unique(np.round(area, 3))) == 8, "every crop is drawn anew"


def test_prototype_head_scores_are_cosines():
    head = PrototypeHead(12, hidden_dim=16, bottleneck_dim=8)
    scores = _numpy(head(np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")))
    assert scores.shape == (2, 5, 12) and scores.dtype == np.float32
    assert np.abs(scores).max() <= 1.0 + 1e-6


def test_local_position_table_matches_the_naflex_resize():
    layer = NaFlexPositionEmbedding(grid_size=4)
    layer.build((None, None, 6))
    expected = layer.resized_positions(np.array([[3, 3]]), 9)[0]
    np.testing.assert_allclose(
        _numpy(resize_square_table(layer.embeddings, 3)), _numpy(expected), atol=1e-6
    )


@pytest.mark.backends
def test_ema_update_formula(monkeypatch):
    teacher = [keras.Variable(np.full((3,), 1.0, "float32"))]
    student = [keras.Variable(np.full((3,), 3.0, "float32"))]
    ema_update(zip(teacher, student), 0.9, active=True)
    np.testing.assert_allclose(_numpy(teacher[0]), 0.9 * 1.0 + 0.1 * 3.0, rtol=1e-6)
    ema_update(zip(teacher, student), 0.9, active=False)
    np.testing.assert_allclose(_numpy(teacher[0]), 3.0)

    rng = np.random.default_rng(0)
    values = [rng.normal(size=shape).astype("float32") for shape in ((4, 5), (5,), (2, 3, 2))]
    teacher = [keras.Variable(v) for v in values]
    student = [keras.Variable(2 * v + 1) for v in values]
    launches = []
    if keras.backend.backend() == "torch":  # one in-place lerp over all pairs
        import torch

        lerp = torch._foreach_lerp_
        monkeypatch.setattr(torch, "_foreach_lerp_", lambda *a: launches.append(1) or lerp(*a))
    ema_update(zip(teacher, student), 0.75, active=keras.ops.convert_to_tensor(True))
    for t, v in zip(teacher, values):
        np.testing.assert_allclose(_numpy(t), 0.75 * v + 0.25 * (2 * v + 1), rtol=1e-6, atol=1e-6)
    ema_update(zip(teacher, student), 0.75, active=keras.ops.convert_to_tensor(False))
    for t, v in zip(teacher, values):  # the student exactly
        np.testing.assert_array_equal(_numpy(t), 2 * v + 1)
    assert len(launches) == (2 if keras.backend.backend() == "torch" else 0)


# On TensorFlow, `remat` moves the switch-on from the graph into Python
# (`SelfSupervisedTraining.make_train_function`): both ways are checked there.
REMAT_MODES = [None, "block"] if keras.backend.backend() == "tensorflow" else [None]


@pytest.fixture(scope="module", params=REMAT_MODES, ids=lambda mode: f"remat={mode}")
def trained(request):
    """Four steps in one `fit` (1-step epochs), switching on after two;
    snapshots of the state between steps."""
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    model.set_remat(request.param)
    batch = first_batch(training_batches(demo_dataset(16, seed=0), model, 8, seed=0))
    model.compile(self_supervised_start=SWITCH_ON)
    traces = []
    original = model.compute_loss

    def counting_compute_loss(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    model.compute_loss = counting_compute_loss
    snapshots = [_state(model)]

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[-1]["logs"] = dict(logs)
            snapshots.append(_state(model))

    data = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(data, epochs=4, steps_per_epoch=1, callbacks=[Snapshot()], verbose=0)
    return model, snapshots, traces


def _state(model):
    pairs = model.teacher_pairs()
    return {
        "teacher": [_numpy(t) for t, _ in pairs],
        "student": [_numpy(s) for _, s in pairs],
        "center": _numpy(model.global_center),
        "patch_center": _numpy(model.patch_center),
    }


@pytest.mark.backends
def test_losses_zero_before_switch_on_and_positive_after(trained):
    _, snapshots, _ = trained
    logs = [s["logs"] for s in snapshots[:-1]]
    for step, step_logs in enumerate(logs):
        for name in ("self_distillation_loss", "masked_prediction_loss"):
            if step < SWITCH_ON:
                assert step_logs[name] == 0.0, (step, name, step_logs[name])
            else:
                assert step_logs[name] > 0.1, (step, name, step_logs[name])


def test_switch_on_does_not_retrace_the_step(trained):
    model, _, traces = trained
    if keras.backend.backend() == "jax":  # compiled: compute_loss runs at trace time only
        assert len(traces) <= 2, f"compute_loss traced {len(traces)} times for 4 steps"


@pytest.mark.backends
def test_teacher_follows_the_student(trained):
    model, snapshots, _ = trained
    momentum = TINY_SELF_SUPERVISED["teacher_momentum"]
    for step in range(len(snapshots) - 1):
        before, after = snapshots[step], snapshots[step + 1]
        for teacher, student, new in zip(before["teacher"], before["student"], after["teacher"]):
            expected = student if step < SWITCH_ON else momentum * teacher + (1 - momentum) * student
            np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
    # The teacher is frozen: no teacher variable is trained by the optimiser.
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(id(t) in trainable for t, _ in model.teacher_pairs())


@pytest.mark.backends
def test_centres_move_only_after_switch_on(trained):
    _, snapshots, _ = trained
    for step in range(len(snapshots) - 1):
        moved = not np.array_equal(snapshots[step]["center"], snapshots[step + 1]["center"])
        patch_moved = not np.array_equal(
            snapshots[step]["patch_center"], snapshots[step + 1]["patch_center"]
        )
        assert moved == patch_moved == (step >= SWITCH_ON), step


def test_switch_on_fraction_needs_total_steps():
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED, seed=None)
    with pytest.raises(ValueError, match="total_steps"):
        model.compile(self_supervised_start=0.8)
    model.compile(self_supervised_start=0.8, total_steps=100)
    assert model.self_supervised_start == 80
    assert set(model.loss_weights_) == {
        "sigmoid", "locca", "self_distillation", "masked_prediction"
    }


def test_unknown_self_supervised_setting():
    with pytest.raises(ValueError, match="num_prototype"):
        tiny_model(self_supervised={"num_prototype": 10}, seed=None)


@pytest.mark.backends
def test_masked_positions_gather_every_masked_patch():
    from keras_siglip2.models.self_supervised import masked_positions, take_positions

    drop = np.zeros((3, 10), bool)
    drop[0, [1, 4, 7, 9]] = True  # 4 = ⌊0.5 · 8⌋ of 8 real patches
    drop[1, [0, 2]] = True  # fewer: padded with weight-0 filler
    index, weights = masked_positions(drop, 0.5)
    index, weights = _numpy(index), _numpy(weights)
    assert index.shape == weights.shape == (3, 5)
    for row in range(3):
        chosen = set(index[row][weights[row] == 1])
        assert chosen == set(np.flatnonzero(drop[row])), row
    tokens = np.arange(3 * 10 * 2, dtype="float32").reshape(3, 10, 2)
    gathered = _numpy(take_positions(tokens, index))
    np.testing.assert_array_equal(gathered, tokens[np.arange(3)[:, None], index])
