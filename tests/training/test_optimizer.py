"""The paper optimiser's update against a NumPy AdamW written from Keras'
definition: warmup + cosine rate, decoupled decay on kernels only, global-norm
clipping. On PyTorch this checks the fused kernel path (`FusedAdamW`)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_siglip2.models.optimizer import FusedAdamW, paper_optimizer

LEARNING_RATE, WEIGHT_DECAY, WARMUP, TOTAL, CLIP = 1e-2, 1e-1, 2, 6, 1.0


def _numpy_adamw(weights, decayed, gradients_per_step):
    """Keras' AdamW (ε inside the bias correction) with the paper's settings."""
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    weights = [w.astype("float64") for w in weights]
    first = [np.zeros_like(w) for w in weights]
    second = [np.zeros_like(w) for w in weights]
    for step, gradients in enumerate(gradients_per_step, start=1):
        rate = LEARNING_RATE * (step - 1) / WARMUP if step - 1 < WARMUP else (
            LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * (step - 1 - WARMUP) / (TOTAL - WARMUP))))
        norm = math.sqrt(sum(float(np.sum(g.astype("float64") ** 2)) for g in gradients))
        scale = min(1.0, CLIP / norm)
        for i, gradient in enumerate(gradients):
            gradient = gradient * scale
            if decayed[i]:
                weights[i] = weights[i] - weights[i] * (WEIGHT_DECAY / LEARNING_RATE) * rate
            first[i] = beta_1 * first[i] + (1 - beta_1) * gradient
            second[i] = beta_2 * second[i] + (1 - beta_2) * gradient**2
            alpha = rate * math.sqrt(1 - beta_2**step) / (1 - beta_1**step)
            weights[i] = weights[i] - alpha * first[i] / (np.sqrt(second[i]) + epsilon)
    return weights


def _apply(optimizer, variables):
    return lambda gradients: optimizer.apply(gradients, variables)


@pytest.mark.backends
def test_paper_optimizer_steps_as_keras_adamw_defines_them():
    _check_steps(_apply)


def test_paper_optimizer_steps_the_same_under_torch_compile():
    """`jit_compile=True` on PyTorch compiles the train step with torch.compile,
    which cannot trace the fused kernel: FusedAdamW takes Keras' update there.
    Checked in a PyTorch process, whatever this run's backend."""
    code = ("from tests.training.test_optimizer import check_steps_under_torch_compile; "
            "check_steps_under_torch_compile()")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ, KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def check_steps_under_torch_compile():
    import torch

    assert keras.backend.backend() == "torch"
    _check_steps(lambda optimizer, variables: torch.compile(_apply(optimizer, variables)))


def _check_steps(make_step):
    """Five steps of `make_step(optimizer, variables)(gradients)` against `_numpy_adamw`."""
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    optimizer = paper_optimizer(model, LEARNING_RATE, WEIGHT_DECAY, WARMUP, TOTAL, CLIP)
    assert isinstance(optimizer, FusedAdamW) == (keras.backend.backend() == "torch")
    variables = model.trainable_variables
    step = make_step(optimizer, variables)
    start = [keras.ops.convert_to_numpy(v) for v in variables]
    rng = np.random.default_rng(0)
    # Kernels: large gradients on odd steps (clipping on and off). Biases:
    # gradients near ε, where ε is added decides the update.
    steps = [[rng.normal(size=v.shape).astype("float32")
              * ((3.0 if t % 2 else 0.05) if "kernel" in v.name else 1e-6)
              for v in variables] for t in range(5)]
    for gradients in steps:
        step([keras.ops.convert_to_tensor(g) for g in gradients])
    expected = _numpy_adamw(start, ["kernel" in v.name for v in variables], steps)
    for variable, want in zip(variables, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), want, rtol=1e-5, atol=1e-6,
                                   err_msg=variable.path)
    assert not np.allclose(keras.ops.convert_to_numpy(variables[0]), start[0])
