"""`siglip2 train` in a real process on a busy CPU: SIGTERM stops it at a step
boundary with a checkpoint whose weights agree with its progress record, it
exits 143 saying where, and the same command resumes to the uninterrupted
run's weights. (SIGINT takes the same handler; `tests/training/test_resume.py`
sends it to a training run in the test's own process.)"""

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_siglip2 import callbacks

REPO = Path(__file__).resolve().parents[2]
STEPS, EVERY = 60, 5
CONFIG = {
    "model": "tiny-naflex", "data": "demo:64", "steps": STEPS, "batch_size": 8,
    "steps_per_checkpoint": EVERY, "output_dir": "run", "locca": False,
}


def _start(directory):
    (directory / "config.json").write_text(json.dumps(CONFIG))
    command = [sys.executable, "-m", "keras_siglip2.cli", "train", str(directory / "config.json")]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _arrays(path):
    arrays = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return arrays


@contextmanager
def _busy_cpu(processes=1):
    """Spinning processes beside the training run. One is enough to keep a
    2-core machine busy while `dev.py test` runs other tests beside this one;
    each more takes a core from those."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("straight")
    code, out, err = _finish(_start(directory))
    assert code == 0, err
    return _arrays(directory / "run" / "preset" / "model.weights.h5")


@pytest.mark.slow
def test_sigterm_stops_training_with_a_checkpoint_and_it_resumes(reference, tmp_path):
    number = signal.SIGTERM
    checkpoint = tmp_path / "run" / "checkpoint"
    with _busy_cpu():
        process = _start(tmp_path)
        deadline = time.monotonic() + 600
        while not (checkpoint / callbacks.PROGRESS_FILE).exists():  # training is under way
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(number)
        code, out, err = _finish(process)
    assert code == 128 + number, err
    progress = callbacks.read_progress(checkpoint)
    step = progress["step"]
    assert EVERY <= step < STEPS, progress  # stopped early, not at the end
    name = signal.Signals(number).name
    assert f"interrupted by {name} at step {step} of {STEPS}; the checkpoint is saved" in err
    assert "Traceback" not in err
    # The weights file the record names holds the optimizer at that very step.
    stored = _arrays(checkpoint / progress["weights"])
    assert int(stored["optimizer/vars/0"]) == step
    assert sorted(p.name for p in checkpoint.iterdir()) == ["progress.json", progress["weights"]]

    code, out, err = _finish(_start(tmp_path))
    assert code == 0, err
    assert f"Resuming from step {step} of {STEPS}." in out
    resumed = _arrays(tmp_path / "run" / "preset" / "model.weights.h5")
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        np.testing.assert_allclose(resumed[key], value, rtol=0, atol=1e-6, err_msg=key)
