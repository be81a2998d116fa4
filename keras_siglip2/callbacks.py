"""Exactly resumable training: checkpoints of weights, optimizer and progress."""

import json
import os
from pathlib import Path

import keras

STATE_FILE = "progress.json"
WEIGHTS_FILE = "checkpoint.weights.h5"


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves model weights, optimizer state and the number of finished epochs
    after every epoch, atomically (write then rename), into `directory`.

    With a deterministic, infinitely repeated dataset whose first
    `completed_epochs(directory) × steps_per_epoch` batches are skipped on
    restart (`resume_training` does both), an interrupted run resumed from
    here ends with the same weights as an uninterrupted one. Use short
    "epochs" (e.g. 25 steps) to lose little work on interruption.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = Path(directory)

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = self.directory / WEIGHTS_FILE
        partial = self.directory / ("partial." + WEIGHTS_FILE)
        self.model.save_weights(partial)
        os.replace(partial, weights)
        state = self.directory / STATE_FILE
        state.with_suffix(".tmp").write_text(json.dumps({"completed_epochs": epoch + 1}))
        os.replace(state.with_suffix(".tmp"), state)


def completed_epochs(directory):
    """Epochs finished by an earlier run that checkpointed into `directory`."""
    state = Path(directory) / STATE_FILE
    if not state.exists():
        return 0
    return int(json.loads(state.read_text())["completed_epochs"])


def restore(model, directory):
    """Load the checkpoint in `directory` into a compiled `model` (weights and
    optimizer state); returns the number of completed epochs (0 if none)."""
    epochs = completed_epochs(directory)
    if epochs:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(Path(directory) / WEIGHTS_FILE)
    return epochs
