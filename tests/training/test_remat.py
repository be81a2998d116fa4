"""Rematerialisation changes what is stored for the backward pass, never the
result: the same training step gives the same losses and weights with
`remat=None`, "mlp" and "block", on every backend."""

import keras
import numpy as np
import pytest

from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.models.siglip2 import SigLIP2
from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model


def _one_step(remat, batch=None, self_supervised=TINY_SELF_SUPERVISED):
    """Logs and gradients (as the change of each weight under SGD, lr 1) of
    one training step (all five losses by default) of the same tiny NaFlex model."""
    model = tiny_model(naflex=True, self_supervised=self_supervised)
    model.set_remat(remat)
    if batch is None:
        batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 4, seed=0))
    model.compile(optimizer=keras.optimizers.SGD(1.0), self_supervised_start=0)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    logs = model.train_on_batch(batch, return_dict=True)
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    return logs, [a - b for a, b in zip(after, before)], batch


@pytest.mark.backends
def test_remat_modes_give_the_same_step():
    logs, gradients, batch = _one_step(None)
    for remat in ("mlp", "block"):
        other_logs, other_gradients, _ = _one_step(remat, batch)
        for name in ("sigmoid_loss", "captioning_loss", "localization_loss",
                     "self_distillation_loss", "masked_prediction_loss"):
            assert other_logs[name] == pytest.approx(logs[name], rel=1e-5, abs=1e-6), name
        for a, b in zip(gradients, other_gradients):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_remat_is_configuration():
    model = tiny_model(locca=True)
    model.set_remat("block")
    blocks = [*model.backbone.vision_encoder.encoder_blocks, *model.decoder.blocks]
    assert all(block.remat == "block" for block in blocks)
    restored = SigLIP2.from_config(model.get_config())
    assert restored.remat == "block"
    assert all(b.remat == "block" for b in restored.backbone.text_encoder.encoder_blocks)
    with pytest.raises(ValueError, match="remat"):
        model.set_remat("everything")
