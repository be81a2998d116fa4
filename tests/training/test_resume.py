"""Exact resume (`callbacks.fit_resumably`, through the demo's training loop):
exactly the steps asked for; a crash inside an interval resumes from the last
checkpoint, a signal stops at the next step with a checkpoint there, and both
end with the uninterrupted run's weights; checkpoints never disagree with
their progress record."""

import json
import os
import signal

import h5py
import keras
import numpy as np
import pytest

from keras_siglip2 import callbacks, demo
from tests.training.helpers import tiny_model

STEPS, EVERY, BATCH, NUM_TRAIN = 12, 3, 4, 16


def _train(output_dir, steps=STEPS):
    output_dir.mkdir(exist_ok=True)  # `demo.train` expects it (run_demo makes it)
    model = tiny_model(naflex=True, seed=0)
    demo.train(model, output_dir, steps, NUM_TRAIN, BATCH, seed=0,
               steps_per_checkpoint=EVERY, verbose=0)
    return model


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _history_steps(output_dir):
    rows = (output_dir / "history.csv").read_text().strip().splitlines()
    step = rows[0].split(",").index("step")
    return [int(row.split(",")[step]) for row in rows[1:]]


def _assert_same_weights(model, reference):
    for variable, got, want in zip(reference.weights, _values(model.weights), _values(reference.weights)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=variable.path)


def _stopping_at(step, action):
    """A `ResumableCheckpoint` that runs `action()` when a step ends at `step`,
    and keeps the model's and optimizer's values at every checkpoint."""

    class Stopping(callbacks.ResumableCheckpoint):
        snapshots = {}

        def on_train_batch_end(self, batch, logs=None):
            if self._epoch_start + batch + 1 == step:
                action()
            super().on_train_batch_end(batch, logs)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            Stopping.snapshots[self.step] = (
                _values(self.model.weights), _values(self.model.optimizer.variables)
            )

    return Stopping


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("straight")
    return output_dir, _train(output_dir)


def test_trains_exactly_the_steps_asked_for(reference, tmp_path):
    output_dir, model = reference
    assert int(model.optimizer.iterations) == STEPS
    assert _history_steps(output_dir) == [3, 6, 9, 12]
    # Not a multiple of the interval: the last interval is cut short, no step at rate 0.
    short = _train(tmp_path, steps=7)
    assert int(short.optimizer.iterations) == 7
    assert _history_steps(tmp_path) == [3, 6, 7]
    assert callbacks.read_progress(tmp_path / "checkpoint")["step"] == 7


@pytest.mark.slow
@pytest.mark.backends
def test_a_crash_resumes_from_the_last_checkpoint(reference, tmp_path, monkeypatch):
    def crash():
        raise RuntimeError("crash")

    stopping = _stopping_at(8, crash)  # inside the third interval
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "ResumableCheckpoint", stopping)
        with pytest.raises(RuntimeError, match="crash"):
            _train(tmp_path)
    checkpoint = tmp_path / "checkpoint"
    progress = callbacks.read_progress(checkpoint)
    assert progress == {"step": 6, "epoch": 2, "weights": "step-00000006.weights.h5"}
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "progress.json", "step-00000006.weights.h5"
    ]
    # The weights file stores the optimizer's variables, not only the model's.
    with h5py.File(checkpoint / progress["weights"]) as f:
        stored = []
        f.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    assert any(name.startswith("optimizer/") for name in stored), stored[:10]

    # `restore` brings back weights and optimizer state (iterations, moments).
    restored = tiny_model(naflex=True, seed=1)
    restored.compile(total_steps=STEPS)
    assert callbacks.restore(restored, checkpoint)["step"] == 6
    weights, optimizer = stopping.snapshots[6]
    assert int(restored.optimizer.iterations) == 6
    for got, want in zip(_values(restored.optimizer.variables) + _values(restored.weights),
                         optimizer + weights):
        np.testing.assert_array_equal(got, want)
    assert any(np.abs(v).max() > 0 for v in optimizer[2:])  # moments are not all zero

    resumed = _train(tmp_path)
    assert int(resumed.optimizer.iterations) == STEPS
    _assert_same_weights(resumed, reference[1])
    assert _history_steps(tmp_path) == [3, 6, 9, 12]


@pytest.mark.slow
@pytest.mark.backends
def test_a_signal_stops_at_the_next_step_with_a_checkpoint(reference, tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "ResumableCheckpoint",
                      _stopping_at(8, lambda: os.kill(os.getpid(), signal.SIGINT)))
        with pytest.raises(callbacks.TrainingInterrupted, match="SIGINT at step 8 of 12") as info:
            _train(tmp_path)
    assert info.value.signal == signal.SIGINT and info.value.step == 8
    assert signal.getsignal(signal.SIGINT) is handler_before  # handlers restored
    assert callbacks.read_progress(tmp_path / "checkpoint")["step"] == 8
    resumed = _train(tmp_path)
    assert int(resumed.optimizer.iterations) == STEPS
    _assert_same_weights(resumed, reference[1])
    assert _history_steps(tmp_path) == [3, 6, 8, 11, 12]


# ------------------------------------------------ the checkpoint on disk
@pytest.fixture
def compiled():
    model = tiny_model(naflex=False, seed=0, locca=False)
    model.compile(total_steps=10)
    model.optimizer.build(model.trainable_variables)
    return model


def test_a_crash_while_saving_leaves_the_previous_checkpoint(compiled, tmp_path, monkeypatch):
    callbacks.save_checkpoint(compiled, tmp_path, step=3, epoch=1)
    saved = _values(compiled.weights)
    for variable in compiled.weights:
        variable.assign(variable + 1.0)
    real_replace = os.replace

    def crash_on_the_record(source, destination):
        if str(destination).endswith(callbacks.PROGRESS_FILE):
            raise OSError("disk full")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", crash_on_the_record)
    with pytest.raises(OSError, match="disk full"):
        callbacks.save_checkpoint(compiled, tmp_path, step=6, epoch=2)
    monkeypatch.undo()
    assert callbacks.restore(compiled, tmp_path)["step"] == 3
    for got, want in zip(_values(compiled.weights), saved):
        np.testing.assert_array_equal(got, want)
    callbacks.save_checkpoint(compiled, tmp_path, step=6, epoch=2)  # tidies the leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json", "step-00000006.weights.h5"]


@pytest.mark.parametrize(
    "record, message",
    [
        ("{not json", "not a checkpoint record"),
        (json.dumps({"completed_epochs": 2}), "not a checkpoint record"),
        (json.dumps({"step": -1, "epoch": 0, "weights": "step-00000001.weights.h5"}), "not a checkpoint record"),
        (json.dumps({"step": 3, "epoch": 1, "weights": "../../elsewhere.h5"}), "not a checkpoint record"),
        (json.dumps({"step": 3, "epoch": 1, "weights": "step-00000003.weights.h5"}), "which is missing"),
    ],
    ids=["corrupt", "old-format", "negative-step", "path-outside", "weights-missing"],
)
def test_bad_checkpoint_records_are_clear_errors(compiled, tmp_path, record, message):
    (tmp_path / callbacks.PROGRESS_FILE).write_text(record)
    with pytest.raises(ValueError, match=f"{message}.*Delete the folder"):
        callbacks.restore(compiled, tmp_path)


def test_a_checkpoint_past_the_steps_asked_for_is_refused(compiled, tmp_path):
    callbacks.save_checkpoint(compiled, tmp_path / "checkpoint", step=9, epoch=3)
    with pytest.raises(ValueError, match="at step 9, past the 5 steps asked for"):
        callbacks.fit_resumably(compiled, lambda: None, tmp_path, 5, 3)


def _lora_model():
    model = tiny_model(naflex=True, seed=0, locca=False)
    model.backbone.enable_lora(2)
    model.compile(learning_rate=1e-2, total_steps=STEPS)
    return model


@pytest.mark.backends
def test_a_lora_checkpoint_keeps_its_factors(tmp_path):
    # Keras' own saving merges the factors into the kernel and loads them back
    # as zeros, where they get no gradient: a resumed LoRA run would not learn.
    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches
    from tests.training.helpers import first_batch

    model = _lora_model()
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, BATCH, seed=0))
    for _ in range(2):
        model.train_on_batch(batch)
    callbacks.save_checkpoint(model, tmp_path, step=2, epoch=1)
    restored = _lora_model()
    callbacks.restore(restored, tmp_path)
    assert any("lora_kernel_b" in v.path and np.abs(value).max() > 0
               for v, value in zip(restored.weights, _values(restored.weights)))
    for got, want in zip(_values(restored.weights) + _values(restored.optimizer.variables),
                         _values(model.weights) + _values(model.optimizer.variables)):
        np.testing.assert_array_equal(got, want)
    # Outside checkpoints, saving is Keras' (merged); such a file loads too.
    model.save_weights(tmp_path / "merged.weights.h5")
    with callbacks.lora_layers_as_they_are(restored):
        restored.load_weights(tmp_path / "merged.weights.h5")
    kernel = next(v for v in restored.weights if v.path.endswith("value/kernel"))
    assert not np.array_equal(_values([kernel])[0], _values([next(
        v for v in model.weights if v.path == kernel.path)])[0])  # the merged kernel
