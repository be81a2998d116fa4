"""Exactly resumable training: `fit_resumably` trains for exactly the steps
asked, checkpoints weights, optimizer state and progress so that no crash can
leave them disagreeing, and stops on SIGINT or SIGTERM at the next step
boundary with a checkpoint to resume from.

A checkpoint directory holds `step-NNNNNNNN.weights.h5` (model and optimizer
variables) and `progress.json`, `{"step", "epoch", "weights"}`, which names the
weights file it belongs to. Both are written to temporary files, flushed to
disk and renamed into place, the progress record last; older weights files are
deleted only after it. A crash at any moment leaves the previous checkpoint or
the new one, never a mix.

Layers with LoRA factors are stored as they are (frozen kernel, factors), not
as Keras saves them: Keras merges the factors into the kernel on save and sets
them to zero on load, and factors that both start at zero get no gradient, so
a resumed LoRA run would stop learning (`lora_layers_as_they_are`).
"""

import contextlib
import csv
import functools
import json
import math
import os
import re
import signal
import threading
from pathlib import Path

import keras

PROGRESS_FILE = "progress.json"
WEIGHTS_PATTERN = re.compile(r"step-\d{8}\.weights\.h5")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (`signal`, e.g. `signal.SIGTERM`) after
    checkpointing `step`; running the same training again resumes there."""

    def __init__(self, signal_number, step, total_steps):
        name = signal.Signals(signal_number).name
        super().__init__(
            f"interrupted by {name} at step {step} of {total_steps}; the checkpoint is "
            "saved: run the same command again to resume."
        )
        self.signal = signal_number
        self.step = step


class StopSignals:
    """In a `with` block in the main thread, SIGINT and SIGTERM only set
    `signal` (so no `KeyboardInterrupt` lands in the middle of a step, or in a
    garbage-collection callback that would swallow it); a second signal
    interrupts at once. Elsewhere it changes nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal = None
        self._previous = {}

    def _record(self, number, frame):
        if self.signal is not None:
            self._restore()
            raise KeyboardInterrupt
        self.signal = number

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {n: signal.signal(n, self._record) for n in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        self._restore()


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoints into `directory` at every epoch end and appends a row to
    `history_file` (CSV: epoch, step, logs); stops training at `total_steps`
    or once `stop.signal` is set (a `StopSignals`). `start_step`: the step the
    model was restored at. Use short epochs (`steps_per_epoch`, e.g. 25
    steps): they are the checkpoint interval."""

    def __init__(self, directory, total_steps, start_step=0, history_file=None, stop=None):
        super().__init__()
        self.directory = Path(directory)
        self.total_steps = total_steps
        self.step = start_step
        self.history_file = Path(history_file) if history_file else None
        self.stop = stop
        self._epoch_start = start_step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.step

    def on_train_batch_end(self, batch, logs=None):
        self.step = self._epoch_start + batch + 1
        if self.step >= self.total_steps or (self.stop is not None and self.stop.signal):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        save_checkpoint(self.model, self.directory, self.step, epoch + 1)
        if self.history_file is not None:
            _append_row(self.history_file, {"epoch": epoch, "step": self.step, **(logs or {})})


def _append_row(path, row):
    fields = None
    if path.exists() and path.stat().st_size:
        with open(path, newline="") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields or list(row), extrasaction="ignore")
        if fields is None:
            writer.writeheader()
        writer.writerow(row)


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def lora_layers_as_they_are(model):
    """Within: every layer of `model` with LoRA factors saves and loads its own
    variables unchanged, keyed by name. A store written by Keras' own method
    (its keys are indices: a checkpoint of an earlier version) still loads
    the Keras way."""
    layers = [layer for layer in model._flatten_layers() if getattr(layer, "lora_enabled", False)]
    for layer in layers:
        keras_load = layer.load_own_variables
        layer.save_own_variables = functools.partial(_save_unchanged, layer)
        layer.load_own_variables = functools.partial(_load_unchanged, layer, keras_load)
    try:
        yield
    finally:
        for layer in layers:
            del layer.save_own_variables, layer.load_own_variables


def _save_unchanged(layer, store):
    for variable in layer.variables:
        store[variable.name] = variable


def _load_unchanged(layer, keras_load, store):
    names = [variable.name for variable in layer.variables]
    if set(store.keys()) != set(names):
        return keras_load(store)
    for variable in layer.variables:
        variable.assign(store[variable.name])


def save_checkpoint(model, directory, step, epoch):
    """Write the model's and optimizer's variables and the progress record
    `{"step", "epoch", "weights"}` into `directory`, crash-consistently (see
    the module docstring)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}.weights.h5"
    partial = directory / f"partial.{name}"
    with lora_layers_as_they_are(model):
        model.save_weights(partial)
    _fsync(partial)
    os.replace(partial, directory / name)
    record = directory / (PROGRESS_FILE + ".partial")
    record.write_text(json.dumps({"step": step, "epoch": epoch, "weights": name}))
    _fsync(record)
    os.replace(record, directory / PROGRESS_FILE)
    _fsync(directory)
    for stale in directory.iterdir():
        if stale.name != name and (WEIGHTS_PATTERN.fullmatch(stale.name) or stale.name.startswith("partial.")):
            stale.unlink()


def read_progress(directory):
    """The progress record of the checkpoint in `directory`
    (`{"step", "epoch", "weights"}`), or None when there is none."""
    path = Path(directory) / PROGRESS_FILE
    if not path.exists():
        return None
    try:
        progress = json.loads(path.read_text())
        step, epoch, weights = progress["step"], progress["epoch"], progress["weights"]
        valid = (
            all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (step, epoch))
            and isinstance(weights, str) and WEIGHTS_PATTERN.fullmatch(weights)
        )
    except (ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise ValueError(
            f"{path} is not a checkpoint record of this version of keras_siglip2 (or it "
            f"is corrupt). Delete the folder {path.parent} to start training over."
        )
    if not (path.parent / weights).is_file():
        raise ValueError(
            f"{path} names the weights file {weights}, which is missing. Delete the "
            f"folder {path.parent} to start training over."
        )
    return progress


def restore(model, directory):
    """Load the checkpoint in `directory` into a compiled `model` (weights and
    optimizer state); returns its progress record (`step` 0 if none)."""
    progress = read_progress(directory)
    if progress is None:
        return {"step": 0, "epoch": 0, "weights": None}
    model.optimizer.build(model.trainable_variables)
    with lora_layers_as_they_are(model):
        model.load_weights(Path(directory) / progress["weights"])
    return progress


def fit_resumably(model, make_batches, output_dir, steps, steps_per_checkpoint, verbose="auto"):
    """Train a compiled `model` for exactly `steps` steps.

    `make_batches()` returns an infinite, deterministic `tf.data` stream (the
    same order every run; called only when steps are left); the steps already
    done are skipped on resume. Checkpoints go
    to `output_dir/checkpoint` every `steps_per_checkpoint` steps, at the last
    step and on SIGINT / SIGTERM (training stops at the next step boundary,
    then `TrainingInterrupted` is raised); one CSV row per interval goes to
    `output_dir/history.csv`. Returns the last interval's logs (empty when
    the checkpoint was already at `steps`).
    """
    for name, value in (("steps", steps), ("steps_per_checkpoint", steps_per_checkpoint)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    directory = Path(output_dir) / "checkpoint"
    progress = restore(model, directory)
    done = progress["step"]
    if done > steps:
        raise ValueError(
            f"The checkpoint in {directory} is at step {done}, past the {steps} steps "
            "asked for. Ask for at least that many steps, or use another output folder."
        )
    if done == steps:
        return {}
    history_file = Path(output_dir) / "history.csv"
    if done:
        print(f"Resuming from step {done} of {steps}.")
    elif history_file.exists():
        history_file.unlink()  # a log without its checkpoint: start it over
    epochs = progress["epoch"] + math.ceil((steps - done) / steps_per_checkpoint)
    with StopSignals() as stop:
        checkpoint = ResumableCheckpoint(directory, steps, done, history_file, stop)
        history = model.fit(
            make_batches().skip(done),
            initial_epoch=progress["epoch"],
            epochs=epochs,
            steps_per_epoch=steps_per_checkpoint,
            callbacks=[checkpoint],
            verbose=verbose,
        )
    if stop.signal is not None:
        raise TrainingInterrupted(stop.signal, checkpoint.step, steps)
    return {key: values[-1] for key, values in history.history.items()}
