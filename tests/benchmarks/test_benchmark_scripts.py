"""Smoke test of the benchmark scripts at tiny sizes: each runs in-process (the
current backend) and its rows make a table with every contestant in it."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import common  # noqa: E402
import encoders  # noqa: E402
import naflex_preprocessing  # noqa: E402
import train_step  # noqa: E402

TINY = ["--depth", "1", "--repeats", "1", "--warmup", "1"]


@pytest.fixture(autouse=True)
def tiny_widths(monkeypatch):
    monkeypatch.setattr(common, "WIDTHS", {"width": 32, "mlp": 64, "heads": 2})


@pytest.mark.parametrize("task, extra", [
    ("image", ["--image-size", "32", "--batch", "2"]),
    ("naflex", ["--patches", "16", "--batch", "2"]),
    ("text", ["--batch", "2", "--vocab", "100"]),
])
def test_encoders_table(task, extra):
    args = encoders.parse(["--task", task, *TINY, *extra])
    result = encoders.run_one(args)
    rows = encoders.rows({result["backend"]: result}, args)
    expected = {"image": 3, "naflex": 2, "text": 3}[task]
    assert len(rows) == expected
    assert result["max_abs_error"] < 1e-4  # the same computation as transformers
    table = common.format_table(rows, encoders.COLUMNS)
    assert table.count("\n") == expected + 1 and "transformers" in table


def test_train_step_table():
    args = train_step.parse([*TINY, "--image-size", "32", "--batch", "2", "--vocab", "100",
                             "--no-full"])
    result = train_step.run_one(args)
    assert abs(result["loss"] - result["reference_loss"]) < 1e-4
    text = train_step.report({result["backend"]: result}, args)
    for name in ("ours sigmoid", "transformers", "keras-hub"):
        assert f"| {name} |" in text


def test_naflex_preprocessing_table(capsys):
    naflex_preprocessing.main(["--photos", "1", "--passes", "1", "--repeats", "1",
                               "--batch", "2", "--patches", "16"])
    out = capsys.readouterr().out
    assert "Same spatial shapes as transformers: True" in out
    assert "| ours tf.data |" in out and "| transformers (PIL) |" in out
