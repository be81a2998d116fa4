"""`dev.py test`'s verdict from the exit statuses of its pytest runs."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("dev", Path(__file__).parents[1] / "dev.py")
dev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dev)

RUNS = len(dev.TEST_RUNS)
EMPTY = dev.NO_TESTS_SELECTED


def test_every_run_passing_passes():
    assert dev.overall_status([0] * RUNS, filtered=False) == 0


def test_a_failing_run_fails():
    assert dev.overall_status([0] * (RUNS - 1) + [1], filtered=False) == 1
    assert dev.overall_status([1] + [EMPTY] * (RUNS - 1), filtered=True) == 1


def test_a_run_that_never_reported_fails():
    assert dev.overall_status([0] * (RUNS - 1), filtered=False) == 1


def test_runs_a_filter_leaves_empty_pass_unless_all_are_empty():
    assert dev.overall_status([0] + [EMPTY] * (RUNS - 1), filtered=True) == 0
    assert dev.overall_status([EMPTY] * RUNS, filtered=True) == 1
    # Without a filter an empty run means tests went missing.
    assert dev.overall_status([0] + [EMPTY] * (RUNS - 1), filtered=False) == 1
