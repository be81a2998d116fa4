#!/usr/bin/env python3
"""Developer and user entry point; needs only Python ≥ 3.10.

    python3 dev.py demo [siglip2 demo options]   train + evaluate the demo model
    python3 dev.py test [pytest options]         the test suite on all backends
    python3 dev.py docs                          build the HTML API reference in docs/api/
    python3 dev.py venv                          just create/update .venv/

The first use creates `.venv/` beside this file and installs the project with
every backend and test dependency at the versions pinned in
`requirements-dev.txt`; later uses reinstall only when those files change.
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
INPUTS = ("requirements-dev.txt", "pyproject.toml")
# Both test folders (pyproject's `testpaths`): `tests/`, the unit tests, and
# `integration/`, the parity, multi-device and end-to-end tests. The full
# suite runs on JAX; the backend-sensitive subset (marker `backends`) also on
# the others. Tests marked `xla` compare XLA with eager execution: only
# TensorFlow runs both (JAX steps are always XLA, PyTorch has none).
# Multi-device tests need devices set up before JAX / TF start, so they run in
# their own processes: JAX on 8 fake CPU devices, TF on 2 logical CPU devices
# (integration/multi_device/conftest.py); they fail, never skip, without them.
# Each run: (backend, pytest arguments, extra environment). The runs form two
# lanes side by side, one per core: the JAX unit and end-to-end tests, and the
# other runs one after another, starting with a JAX run of the unit tests in
# `MOVED_JAX_UNIT` (the benchmark scripts' smoke tests, the cross-backend step
# and the fine-tuning tests: over a third of the JAX unit tests' time), which
# would otherwise leave the second lane idle for minutes while the first still
# ran. (The end-to-end runs keep both cores busy on their own: the first lane
# may end later than the second.)
# The unit and multi-device tests spend most of their time compiling tiny
# programs: XLA's backend optimisation level 0 compiles them faster and runs
# them slower, 15–32% less time in all (README, "Tests"). The end-to-end runs
# (marker `end_to_end`) train for hundreds of steps, seven times slower at
# level 0: they keep the default.
MULTI_DEVICE = "integration/multi_device/"
MOVED_JAX_UNIT = (
    "tests/benchmarks/",
    "tests/training/test_same_step_across_backends.py",
    "tests/models/test_fine_tuning.py",
)
FAST_COMPILE = "--xla_backend_optimization_level=0"
JAX_UNIT = "not multi_device and not xla and not end_to_end"
LANES = (
    (
        ("jax", ["-m", JAX_UNIT, *(f"--ignore={path}" for path in MOVED_JAX_UNIT)],
         {"XLA_FLAGS": FAST_COMPILE}),
        ("jax", ["-m", "end_to_end"], {}),
    ),
    (
        ("jax", ["-m", JAX_UNIT, *MOVED_JAX_UNIT], {"XLA_FLAGS": FAST_COMPILE}),
        ("tensorflow", ["-m", "(backends or xla) and not multi_device"], {}),
        ("torch", ["-m", "backends and not multi_device"], {}),
        (
            "jax",
            ["-m", "multi_device", f"{MULTI_DEVICE}test_jax_sigmoid_losses.py",
             f"{MULTI_DEVICE}test_jax_fit.py", f"{MULTI_DEVICE}test_jax_loss_memory.py"],
            {"XLA_FLAGS": f"--xla_force_host_platform_device_count=8 {FAST_COMPILE}"},
        ),
        # Two processes: after the replica-step tests, TF's collective ops can
        # mismatch instances in a later MirroredStrategy `fit` in the same process.
        ("tensorflow", ["-m", "multi_device", f"{MULTI_DEVICE}test_tf_mirrored.py", "-k", "not fit"], {}),
        ("tensorflow", ["-m", "multi_device", f"{MULTI_DEVICE}test_tf_mirrored.py", "-k", "fit"], {}),
    ),
)
TEST_RUNS = tuple(run for lane in LANES for run in lane)


NO_TESTS_SELECTED = 5  # pytest's exit status


def _fingerprint():
    digest = hashlib.sha256()
    for name in INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(command, **kwargs):
    print("+", " ".join(str(c) for c in command), flush=True, file=kwargs.get("stdout"))
    return subprocess.run(command, cwd=ROOT, **kwargs).returncode


def ensure_venv():
    """Create `.venv/` and install the pinned environment if needed."""
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint and PYTHON.exists():
        return
    if sys.version_info < (3, 10):
        sys.exit(f"Python ≥ 3.10 is needed; this is {sys.version.split()[0]}.")
    print("Setting up .venv/ with the pinned environment (first run: a few minutes)…")
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [PYTHON, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt"],
        [PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "-e", "."],
    ]
    if PYTHON.exists():
        steps = steps[1:]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for step in steps:
        if _run(step, env=env) != 0:
            sys.exit("Installing the environment failed (see above).")
    STAMP.write_text(fingerprint)


def _is_test_path(argument):
    """Whether a pytest argument names a test file or folder (`path::test` too)."""
    return not argument.startswith("-") and (ROOT / argument.split("::")[0]).exists()


def _test_run(run, pytest_args, jax_cache, **kwargs):
    """One of `TEST_RUNS` as a pytest process; its exit status."""
    backend, arguments, extra_env = run
    if any(_is_test_path(arg) for arg in pytest_args):  # the user's paths replace the run's own
        arguments = [arg for arg in arguments if not _is_test_path(arg)]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", **extra_env)
    # One JAX compilation cache for the whole test run, its subprocesses
    # included: a program compiled once (the same tiny training step in many
    # tests, a run and its resumption) is read back, not compiled again. A
    # size limit makes JAX lock the folder for the runs that share it.
    env.update(JAX_COMPILATION_CACHE_DIR=jax_cache, JAX_COMPILATION_CACHE_MAX_SIZE=str(2**33),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
    command = [PYTHON, "-m", "pytest", "-q", "--durations=15", *arguments, *pytest_args]
    out = kwargs.get("stdout")
    print(f"\n=== tests on {backend} {' '.join(arguments)} ===", flush=True, file=out)
    started = time.monotonic()
    code = _run(command, env=env, **kwargs)
    # pytest's own "in N s" leaves out the interpreter's start and its imports.
    print(f"=== exit {code} after {time.monotonic() - started:.0f} s wall ===", flush=True, file=out)
    return code


def test(pytest_args):
    """The two `LANES` side by side: the first printed as it runs, the second
    printed once the first is done."""
    import tempfile
    import threading

    first, second = LANES
    logs = [tempfile.TemporaryFile("w+") for _ in second]
    first_codes, second_codes = [], []
    with tempfile.TemporaryDirectory(prefix="siglip2-jax-cache-") as jax_cache:
        background = threading.Thread(target=lambda: second_codes.extend(
            _test_run(run, pytest_args, jax_cache, stdout=log, stderr=subprocess.STDOUT)
            for run, log in zip(second, logs)))
        background.start()
        first_codes.extend(_test_run(run, pytest_args, jax_cache) for run in first)
        background.join()
    for log in logs:
        log.seek(0)
        print(log.read(), flush=True)
    return overall_status(first_codes + second_codes, filtered=bool(pytest_args))


def overall_status(codes, filtered):
    """0 if every one of `TEST_RUNS` passed, else 1, from their pytest exit
    statuses `codes`. A lane that died early left fewer codes than runs: a
    failure. pytest exits 5 when it selects no test: fine for a run that the
    user's arguments (`filtered`: `-k …`, a path) leave empty, not when they
    leave every run empty."""
    if len(codes) != len(TEST_RUNS):
        return 1
    empty = [code == NO_TESTS_SELECTED for code in codes]
    if filtered and not all(empty):
        codes = [0 if nothing else code for nothing, code in zip(empty, codes)]
    return 1 if any(codes) else 0


def main(argv):
    if not argv or argv[0] not in ("demo", "test", "docs", "venv"):
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        return _run([VENV / "bin" / "siglip2", "demo", *rest], env=env)
    if command == "test":
        return test(rest)
    if command == "docs":
        return _run([PYTHON, "docs/build_api.py"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
