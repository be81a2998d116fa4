"""Training steps of a tiny SigLIP2 with all five losses under $KERAS_BACKEND
(run as a subprocess).

    python same_step_worker.py init DIR   # weights.npz + batch.npz (random init, real pipeline)
    python same_step_worker.py step DIR   # load both, two train_on_batch, write
                                          # DIR/after{1,2}_<backend>.npz, print the logs as JSON

Run in fresh processes so that variable paths (from layer-name counters) agree.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model  # noqa: E402


def full_recipe_model(seed):
    """All five losses from the first step (self-supervised start 0)."""
    return tiny_model(naflex=True, seed=seed, self_supervised=TINY_SELF_SUPERVISED)


def init(directory):
    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches

    model = full_recipe_model(seed=0)
    np.savez(os.path.join(directory, "weights.npz"), *_values(model))
    with open(os.path.join(directory, "paths.json"), "w") as f:
        json.dump([v.path for v in model.weights], f)
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 8, seed=0))
    # Both captioning modes, and one example without regions (zero weights).
    batch["captioning_parallel"] = np.arange(8) % 2 == 0
    for task in ("referring", "grounded"):
        batch[f"{task}_weights"][3] = 0.0
    np.savez(os.path.join(directory, "batch.npz"), **batch)


def _values(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def step(directory):
    model = full_recipe_model(seed=1)  # different init: every value must come from the file
    model.compile(self_supervised_start=0)
    # Variable paths are not unique (both towers have `encoder_block_0/...`),
    # so variables are matched by position, checked by path and shape.
    stored = np.load(os.path.join(directory, "weights.npz"))
    with open(os.path.join(directory, "paths.json")) as f:
        paths = json.load(f)
    if paths != [v.path for v in model.weights]:
        raise SystemExit("the model's variables differ from the stored ones")
    for i, variable in enumerate(model.weights):
        value = stored[f"arr_{i}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise SystemExit(f"{variable.path}: {value.shape} vs {variable.shape}")
        variable.assign(value)
    batch = dict(np.load(os.path.join(directory, "batch.npz")))
    backend = keras.backend.backend()
    # Two steps: the second also checks that no state (e.g. gradients left on
    # torch parameters) carries over from the first.
    for step_number in (1, 2):
        logs = model.train_on_batch(batch, return_dict=True)
        np.savez(os.path.join(directory, f"after{step_number}_{backend}.npz"), *_values(model))
        print(f"LOGS{step_number} " + json.dumps({k: float(v) for k, v in logs.items()}))


if __name__ == "__main__":
    {"init": init, "step": step}[sys.argv[1]](sys.argv[2])
