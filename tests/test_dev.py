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


def test_a_users_path_replaces_the_paths_a_run_names(monkeypatch):
    commands = []
    monkeypatch.setattr(dev, "_run", lambda command, **kwargs: commands.append(command) or 0)
    multi_device = next(run for run in dev.TEST_RUNS if any(dev._is_test_path(a) for a in run[1]))
    dev._test_run(multi_device, ["tests/test_dev.py", "-k", "fit"], "/tmp/cache")
    dev._test_run(multi_device, ["-k", "fit"], "/tmp/cache")
    with_path, without = ([a for a in command[1:] if dev._is_test_path(a)] for command in commands)
    assert with_path == ["tests/test_dev.py"]
    assert without == [a for a in multi_device[1] if dev._is_test_path(a)] != []


def test_what_one_jax_run_ignores_another_runs():
    """Tests moved to the other lane are moved, not dropped."""
    ignored = [a.split("=", 1)[1] for run in dev.TEST_RUNS for a in run[1] if a.startswith("--ignore=")]
    assert ignored
    for path in ignored:
        takers = [run for run in dev.TEST_RUNS if run[0] == "jax" and path in run[1]]
        assert len(takers) == 1 and (dev.ROOT / path).exists(), path
        ignoring = next(run for run in dev.TEST_RUNS if f"--ignore={path}" in run[1])
        assert takers[0][1][:2] == ignoring[1][:2] and takers[0][2] == ignoring[2]  # same selection
