"""A tiny SigLIP2 memorises 8 examples: every loss (sigmoid, captioning,
localisation) goes near zero, and only because the model uses the images."""

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from tests.training.helpers import first_batch, tiny_model

STEPS = 300


def _image_keys(batch):
    return [k for k in ("images", "patches", "patch_mask", "spatial_shapes") if k in batch]


@pytest.mark.slow
@pytest.mark.parametrize("naflex", [False, True], ids=["fixed", "naflex"])
def test_overfits_eight_examples(naflex):
    model = tiny_model(naflex=naflex)
    batch = first_batch(
        training_batches(demo_dataset(8, seed=0), model, 8, seed=0, shuffle_buffer=0)
    )
    # Both captioning modes and both localisation tasks are in the batch.
    assert 0 < batch["captioning_parallel"].sum() < 8
    assert (batch["referring_weights"].sum(1) == 5).all()  # 4 box tokens + EOS
    assert len({tuple(row) for row in batch["captioning_targets"]}) == 8

    model.compile(learning_rate=3e-3, weight_decay=0.0)
    initial = model.test_on_batch(batch, return_dict=True)
    assert initial["sigmoid_loss"] > 5 and initial["captioning_loss"] > 5
    assert initial["localization_loss"] > 5

    stream = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(stream, steps_per_epoch=STEPS, epochs=1, verbose=0, shuffle=False)
    final = model.test_on_batch(batch, return_dict=True)
    assert final["sigmoid_loss"] < 0.05 * initial["sigmoid_loss"], final
    assert final["captioning_loss"] < 0.1, final
    assert final["localization_loss"] < 0.1, final
    assert final["loss"] == pytest.approx(
        final["sigmoid_loss"] + _token_mean(batch, final), rel=1e-3, abs=1e-4
    )

    # Control: pair each example's text and decoder tasks with another image.
    # Memorised text alone cannot give the boxes or the parallel captions.
    shuffled = dict(batch)
    order = np.roll(np.arange(8), 1)
    for key in _image_keys(batch):
        shuffled[key] = batch[key][order]
    control = model.test_on_batch(shuffled, return_dict=True)
    assert control["sigmoid_loss"] > 20 * final["sigmoid_loss"], control
    assert control["localization_loss"] > max(0.5, 100 * final["localization_loss"]), control
    assert control["captioning_loss"] > 1.0, control


def _token_mean(batch, logs):
    """LocCa term of the total: the token mean over the three tasks."""
    captioning = batch["captioning_weights"].sum()
    localisation = batch["referring_weights"].sum() + batch["grounded_weights"].sum()
    return (
        logs["captioning_loss"] * captioning + logs["localization_loss"] * localisation
    ) / (captioning + localisation)
