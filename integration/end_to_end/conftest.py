"""The demo model, trained once per test session; the `end_to_end` marker."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Marks every test in this folder `end_to_end` (before `-m` selects):
    dev.py runs them in a JAX process of their own, with XLA's full
    optimisation (the demo trains for 600 steps)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.end_to_end)


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
