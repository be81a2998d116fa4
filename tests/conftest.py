import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _reset_dtype_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def short_demo(tmp_path_factory):
    """A 600-step `siglip2 demo` run, trained once per test session and shared
    (test_demo, the CLI and evaluation tests): `(output_dir, report)`."""
    from keras_siglip2.demo import run_demo

    output_dir = tmp_path_factory.mktemp("short_demo")
    report = run_demo(
        output_dir, steps=600, num_train=1500, num_test=120, steps_per_checkpoint=50, verbose=0
    )
    return output_dir, report
