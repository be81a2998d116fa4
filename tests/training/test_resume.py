"""Exact resume: the demo training loop (`keras_siglip2.demo.train`) interrupted
mid-interval after two checkpoints and run again ends with the same weights as
an uninterrupted run; the checkpoint holds the optimizer state."""

import h5py
import keras
import numpy as np
import pytest

from keras_siglip2 import callbacks, demo
from tests.training.helpers import tiny_model

STEPS, EVERY, BATCH, NUM_TRAIN = 12, 3, 4, 16
INTERRUPT_AT = 8  # after the checkpoints at steps 3 and 6, inside the third interval


def _train(output_dir):
    output_dir.mkdir(exist_ok=True)  # `demo.train` expects it (run_demo makes it)
    model = tiny_model(naflex=True, seed=0)
    demo.train(model, output_dir, STEPS, NUM_TRAIN, BATCH, seed=0,
               steps_per_checkpoint=EVERY, verbose=0)
    return model


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


@pytest.mark.slow
@pytest.mark.backends
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    reference = _train(tmp_path / "straight")
    assert int(reference.optimizer.iterations) == STEPS

    snapshots = {}

    class Interrupting(callbacks.ResumableCheckpoint):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            Interrupting.steps += 1
            if Interrupting.steps == INTERRUPT_AT:
                raise KeyboardInterrupt

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            snapshots[epoch + 1] = (
                _values(self.model.weights), _values(self.model.optimizer.variables)
            )

    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "ResumableCheckpoint", Interrupting)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path / "resumed")
    checkpoint = tmp_path / "resumed" / "checkpoint"
    assert callbacks.completed_epochs(checkpoint) == 2 and sorted(snapshots) == [1, 2]
    assert not list(checkpoint.glob("partial.*"))

    # The checkpoint file stores the optimizer's variables, not only the model's.
    with h5py.File(checkpoint / callbacks.WEIGHTS_FILE) as f:
        stored = []
        f.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    assert any(name.startswith("optimizer/") for name in stored), stored[:10]

    # `restore` brings back weights and optimizer state (iterations, moments) as
    # they were at the last checkpoint.
    restored = tiny_model(naflex=True, seed=1)
    restored.compile(total_steps=STEPS)
    assert callbacks.restore(restored, checkpoint) == 2
    weights, optimizer = snapshots[2]
    assert int(restored.optimizer.iterations) == 2 * EVERY
    assert len(restored.optimizer.variables) == len(optimizer)
    for got, want in zip(_values(restored.optimizer.variables), optimizer):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(_values(restored.weights), weights):
        np.testing.assert_array_equal(got, want)
    assert any(np.abs(v).max() > 0 for v in optimizer[2:])  # moments are not all zero

    resumed = _train(tmp_path / "resumed")
    assert int(resumed.optimizer.iterations) == STEPS
    for variable, got, want in zip(reference.weights, _values(resumed.weights), _values(reference.weights)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=variable.path)
    # The CSV log has one row per interval, the resumed ones appended.
    rows = (tmp_path / "resumed" / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]
