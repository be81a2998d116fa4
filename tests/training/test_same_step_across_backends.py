"""Training steps (all five losses, paper optimiser, NaFlex) from the same
weights and batch give the same losses and the same updated weights (EMA
teacher and centres included) on JAX, TensorFlow and torch. Each backend runs in its own process (`same_step_worker.py`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("same_step_worker.py")
BACKENDS = ("jax", "tensorflow", "torch")
LOSSES = (
    "sigmoid_loss", "captioning_loss", "localization_loss",
    "self_distillation_loss", "masked_prediction_loss", "loss",
)


def _env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(WORKER.parents[2]), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return env


def _start(mode, directory, backend):
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(directory)], env=_env(backend), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _finish(process, what):
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, f"{what} failed:\n{out[-3000:]}\n{err[-5000:]}"
    return out


def _arrays(path):
    stored = np.load(path)
    return [stored[f"arr_{i}"] for i in range(len(stored.files))]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("same_step")
    _finish(_start("init", directory, "jax"), "init")
    processes = {b: _start("step", directory, b) for b in BACKENDS}
    logs = {1: {}, 2: {}}
    after = {1: {}, 2: {}}
    for backend, process in processes.items():
        out = _finish(process, backend)
        for step in (1, 2):
            line = [x for x in out.splitlines() if x.startswith(f"LOGS{step} ")][-1]
            logs[step][backend] = json.loads(line.split(" ", 1)[1])
            after[step][backend] = _arrays(directory / f"after{step}_{backend}.npz")
    before = _arrays(directory / "weights.npz")
    paths = json.loads((directory / "paths.json").read_text())
    return logs, before, after, paths


@pytest.mark.slow
@pytest.mark.parametrize("step", [1, 2])
def test_losses_agree(results, step):
    logs = results[0][step]
    for name in LOSSES:
        values = {backend: logs[backend][name] for backend in BACKENDS}
        # A real early step: every term is a sizeable positive number.
        assert all(v > 1.0 for v in values.values()), (name, values)
        reference = values["jax"]
        for backend, value in values.items():
            assert abs(value - reference) <= 1e-4 * abs(reference), (name, values)
    # The total is sigmoid + the token mean of the LocCa terms + self-distillation
    # + 0.25 · masked prediction (weights 1, 1, 1, 0.25 at size factor 1).
    jax_logs = logs["jax"]
    locca = (
        jax_logs["loss"] - jax_logs["sigmoid_loss"]
        - jax_logs["self_distillation_loss"] - 0.25 * jax_logs["masked_prediction_loss"]
    )
    low = min(jax_logs["captioning_loss"], jax_logs["localization_loss"])
    high = max(jax_logs["captioning_loss"], jax_logs["localization_loss"])
    assert low - 1e-4 <= locca <= high + 1e-4
    if step == 2:  # the first step lowered the loss
        assert jax_logs["loss"] < results[0][1]["jax"]["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("step", [1, 2])
def test_updated_weights_agree(results, step):
    _, before, after, paths = results
    previous = before if step == 1 else after[1]["jax"]
    for i, path in enumerate(paths):
        reference = after[step]["jax"][i]
        change = np.abs(reference - previous[i]).max()
        # Every trainable variable moves (Adam: ~lr = 1e-3 per element), except
        # attention key biases, whose gradient is exactly zero (softmax shift);
        # the teacher starts equal to the student and trails it by one step.
        if not path.endswith("key/bias") and not path.startswith("teacher_"):
            assert change > 1e-4, f"{path} did not change in step {step} ({change})"
        for backend in BACKENDS[1:]:
            np.testing.assert_allclose(
                after[step][backend][i], reference, rtol=0, atol=1e-5,  # 1% of a step
                err_msg=f"step {step}, variable {i} {path}: {backend} vs jax",
            )
