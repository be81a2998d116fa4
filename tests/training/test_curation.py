"""Active data curation: per-example scores, learnability selection, training on the pick."""

import types

import keras
import numpy as np
import pytest
from keras import ops

from keras_siglip2 import losses
from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from tests.training.helpers import first_batch, tiny_model

BATCH = 8
EASY = np.array([0, 2, 3, 6])  # the examples the teacher has learned


def _numpy(x):
    return np.array(ops.convert_to_numpy(x))


def _reference_per_example(image, text, log_temperature, bias):
    logits = image @ text.T * np.exp(log_temperature) + bias
    labels = 2 * np.eye(len(image)) - 1
    pair = np.log1p(np.exp(-labels * logits))
    return 0.5 * (pair.sum(1) + pair.sum(0))


@pytest.mark.backends
def test_per_example_loss_matches_numpy_and_sums_to_the_batch_loss():
    rng = np.random.default_rng(0)
    image, text = (rng.normal(size=(6, 5)).astype("float32") for _ in range(2))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    scores = _numpy(losses.per_example_sigmoid_loss(image, text, 1.5, -3.0))
    np.testing.assert_allclose(scores, _reference_per_example(image, text, 1.5, -3.0), rtol=1e-5)
    batch_loss = float(_numpy(losses.sigmoid_loss(image, text, 1.5, -3.0)))
    np.testing.assert_allclose(scores.sum(), 6 * batch_loss, rtol=1e-5)


def test_learnability_selection_picks_the_largest_gap():
    learner = np.array([3.0, 1.0, 2.0, 5.0])
    teacher = np.array([0.5, 0.9, 2.5, 1.0])  # gaps 2.5, 0.1, -0.5, 4.0
    np.testing.assert_array_equal(_numpy(losses.learnability_selection(learner, teacher, 2)), [3, 0])


class EasyHalfTeacher(keras.Model):
    """A stand-in strong teacher: example i (its id is `token_ids[i, 0]`) gets
    image embedding e_i and text embedding e_i when i is easy (its pair is
    matched), and an unrelated direction otherwise."""

    def __init__(self):
        super().__init__()
        self.logit_head = types.SimpleNamespace(log_temperature=np.log(10.0), bias=-5.0)

    def call(self, inputs, training=False):
        ids = ops.cast(inputs["token_ids"][:, 0], "int32")
        easy = ops.any(ops.equal(ids[:, None], ops.convert_to_tensor(EASY, "int32")[None]), axis=1)
        image = ops.one_hot(ids, 2 * BATCH)
        text = ops.one_hot(ops.where(easy, ids, ids + BATCH), 2 * BATCH)
        return {"image_embeddings": image, "text_embeddings": text}


@pytest.mark.backends
def test_curation_trains_on_the_examples_the_teacher_finds_easy():
    model = tiny_model(naflex=False, locca=True)
    batch = first_batch(training_batches(demo_dataset(BATCH, seed=0), model, BATCH, seed=0))
    batch["token_ids"][:, 0] = np.arange(BATCH)  # the teacher reads the example id here
    model.compile(curation_teacher=EasyHalfTeacher(), curation_fraction=0.5)
    outputs = model(batch)
    selected, weights = model._curate(batch, outputs["image_embeddings"], outputs["text_embeddings"])
    np.testing.assert_array_equal(np.sort(_numpy(selected)), EASY)
    np.testing.assert_array_equal(_numpy(weights), np.isin(np.arange(BATCH), EASY).astype("float32"))

    # The logged sigmoid loss is the loss of the selected sub-batch alone.
    head = model.backbone.logit_head
    image = _numpy(outputs["image_embeddings"])[EASY]
    text = _numpy(outputs["text_embeddings"])[EASY]
    expected = _reference_per_example(
        image, text, float(_numpy(head.log_temperature)), float(_numpy(head.bias))
    ).sum() / len(EASY)
    logs = model.train_on_batch(batch, return_dict=True)
    np.testing.assert_allclose(logs["sigmoid_loss"], expected, rtol=1e-4)


def test_curation_fraction_is_checked():
    model = tiny_model(seed=None)
    with pytest.raises(ValueError, match="curation_fraction"):
        model.compile(curation_teacher=EasyHalfTeacher(), curation_fraction=1.5)
