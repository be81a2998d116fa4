"""The demo model, trained once per test session."""

import pytest


@pytest.fixture(scope="session")
def short_demo(tmp_path_factory):
    """A 600-step `siglip2 demo` run, trained once per test session and shared
    (test_demo and test_demo_preset): `(output_dir, report)`."""
    from keras_siglip2.demo import run_demo

    output_dir = tmp_path_factory.mktemp("short_demo")
    report = run_demo(
        output_dir, steps=600, num_train=1500, num_test=120, steps_per_checkpoint=50, verbose=0
    )
    return output_dir, report
