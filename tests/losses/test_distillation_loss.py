import keras
import numpy as np
import pytest

from keras_siglip2.losses import distillation_loss
from keras_siglip2.losses import update_center


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _numpy_distillation(student, teacher, center, ts, tt, weights=None):
    teacher_probs = _softmax((teacher.astype("float64") - center) / tt)
    log_student = np.log(_softmax(student.astype("float64") / ts))
    ce = -(teacher_probs * log_student).sum(-1)
    if weights is None:
        return ce.mean()
    weights = np.broadcast_to(weights, ce.shape)
    return (weights * ce).sum() / weights.sum()


@pytest.mark.backends
def test_distillation_loss_matches_numpy_with_broadcast_teacher(rng):
    # SILC: 8 local crops per image against one global teacher view.
    student = rng.normal(size=(2, 8, 16)).astype("float32")
    teacher = rng.normal(size=(2, 1, 16)).astype("float32")
    center = rng.normal(size=(16,)).astype("float32") * 0.1
    got = distillation_loss(student, teacher, center)
    expected = _numpy_distillation(student, teacher, center, 0.1, 0.04)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5)
    got = distillation_loss(student, teacher, center, student_temperature=0.5, teacher_temperature=0.2)
    expected = _numpy_distillation(student, teacher, center, 0.5, 0.2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5)


@pytest.mark.backends
def test_weighted_positions_masked_prediction(rng):
    # TIPS: per-patch prototypes; only masked patches (weight 1) count.
    student = rng.normal(size=(3, 10, 12)).astype("float32")
    teacher = rng.normal(size=(3, 10, 12)).astype("float32")
    center = np.zeros(12, "float32")
    weights = (rng.random((3, 10)) < 0.5).astype("float32")
    got = distillation_loss(student, teacher, center, weights=weights)
    expected = _numpy_distillation(student, teacher, center, 0.1, 0.04, weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5)
    # Unmasked positions can change freely.
    student2 = student.copy()
    student2[weights == 0] += 5.0
    got2 = distillation_loss(student2, teacher, center, weights=weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got2), expected, rtol=1e-5)
    zero = distillation_loss(student, teacher, center, weights=np.zeros((3, 10), "float32"))
    assert float(keras.ops.convert_to_numpy(zero)) == 0.0


@pytest.mark.backends
def test_gradient_flows_to_student_only(rng, value_and_grad):
    student = rng.normal(size=(4, 6)).astype("float32")
    teacher = rng.normal(size=(4, 6)).astype("float32")
    center = rng.normal(size=(6,)).astype("float32")
    _, (g_student, g_teacher, g_center) = value_and_grad(
        lambda s, t, c: distillation_loss(s, t, c), student, teacher, center
    )
    assert np.all(g_teacher == 0) and np.all(g_center == 0)
    # d/ds of the mean CE = (softmax(s/τs) - p_teacher) / (τs · N).
    expected = (_softmax(student / 0.1) - _softmax((teacher - center) / 0.04)) / (0.1 * 4)
    np.testing.assert_allclose(g_student, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.backends
def test_update_center(rng):
    center = rng.normal(size=(5,)).astype("float32")
    teacher = rng.normal(size=(2, 3, 5)).astype("float32")
    got = keras.ops.convert_to_numpy(update_center(center, teacher, momentum=0.8))
    np.testing.assert_allclose(got, 0.8 * center + 0.2 * teacher.reshape(-1, 5).mean(0), rtol=1e-5)
    weights = np.array([[1, 0, 1], [0, 0, 1]], "float32")
    got = keras.ops.convert_to_numpy(update_center(center, teacher, momentum=0.9, weights=weights))
    expected = 0.9 * center + 0.1 * teacher[weights > 0].mean(0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    unchanged = update_center(center, teacher, weights=np.zeros((2, 3), "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(unchanged), center)
