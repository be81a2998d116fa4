"""The full training step (all five losses, NaFlex) compiles with XLA
(`jit_compile=True`) and gives the eager step's losses.

Marked `xla`: `make test` runs it on TensorFlow, where XLA is an option. JAX's
step is always XLA and gives the same losses and weights as TensorFlow's graph
and PyTorch's eager step (`test_same_step_across_backends.py`); PyTorch has no
XLA (there `jit_compile=True` is `torch.compile`, which this test also checks
when run there by hand)."""

import numpy as np
import pytest

from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model


def _step(jit_compile):
    model = tiny_model(naflex=True, seed=0, self_supervised=TINY_SELF_SUPERVISED)
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 8, seed=0))
    model.compile(self_supervised_start=0, jit_compile=jit_compile)
    assert model.jit_compile == jit_compile
    return model.train_on_batch(batch, return_dict=True)


@pytest.mark.xla
@pytest.mark.slow
def test_xla_step_equals_eager_step():
    compiled = _step(jit_compile=True)
    eager = _step(jit_compile=False)
    for name in ("sigmoid_loss", "captioning_loss", "localization_loss",
                 "self_distillation_loss", "masked_prediction_loss", "loss"):
        assert np.isfinite(compiled[name]) and compiled[name] > 0, (name, compiled)
        np.testing.assert_allclose(compiled[name], eager[name], rtol=1e-4, err_msg=name)
