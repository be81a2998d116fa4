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
    monkeypatch.setattr(common, "WIDTHS", dict(common.TINY_WIDTHS))


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
                             "--no-full", "--tiny"])
    result = train_step.run_one(args)
    assert abs(result["loss"] - result["reference_loss"]) < 1e-4
    text = train_step.report({result["backend"]: result}, args)
    assert "tiny widths (host overhead: 32 wide" in text
    for name in ("ours sigmoid", "transformers", "keras-hub"):
        assert f"| {name} |" in text


def test_naflex_preprocessing_table(capsys):
    naflex_preprocessing.main(["--photos", "1", "--passes", "1", "--repeats", "1",
                               "--batch", "2", "--patches", "16"])
    out = capsys.readouterr().out
    assert "Same spatial shapes as transformers: True" in out
    assert "| ours tf.data |" in out and "| transformers (PIL) |" in out


def test_step_memory_smoke(capsys):
    """Residuals shrink with each remat mode; the table has every row."""
    import step_memory

    rows = step_memory.main(["--smoke", "--recipes", "sigmoid", "full"])
    residuals = {(r["recipe"], r["remat"]): r["residuals"]["total"] for r in rows}
    for recipe in ("sigmoid", "full"):
        assert residuals[(recipe, "none")] > residuals[(recipe, "mlp")] > residuals[(recipe, "block")]
    assert residuals[("full", "none")] > residuals[("sigmoid", "none")]
    full = next(r for r in rows if r["recipe"] == "full" and r["remat"] == "none")
    assert full["residuals"]["self-supervised"] > 0 and full["residuals"]["decoder"] > 0
    out = capsys.readouterr().out
    assert "| full | block |" in out and "| local_views |" in out


def test_gpu_benchmark_smoke(capsys):
    """Each contestant in its own process, on CPU at toy sizes."""
    import gpu

    rows = gpu.main(["--smoke", "--rows", "train-b16", "train-full", "--remat", "none"])
    assert [(r["row"], r["contestant"]) for r in rows] == [
        ("train-b16", "ours"), ("train-b16", "transformers"), ("train-full", "ours remat=none"),
    ]
    for row in rows:
        assert "error" not in row, row
        assert row["seconds"] > 0 and row["tflop"] > 0 and row["mfu_measured"] > 0
    assert rows[0]["speed"] > 0 and rows[1]["speed"] == 1.0
    assert "| train-full | ours remat=none |" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["image", "train"])
def test_torch_profile_tables(case):
    """It profiles the PyTorch backend whatever this run's backend: a subprocess."""
    import subprocess

    script = os.path.join(os.path.dirname(common.__file__), "torch_profile.py")
    result = subprocess.run(
        [sys.executable, script, "--case", case, "--depth", "1", "--batch", "2", "--calls", "1",
         "--warmup", "1", "--top", "5"],
        env=dict(os.environ, KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "all ATen operators" in out and "wall per call" in out
    for kind in ("matmul", "attention", "optimizer"):
        assert kind in out
    assert out.count("aten::") == 5


def test_torch_compile_table():
    """It compiles on the PyTorch backend whatever this run's backend: a
    subprocess; the predict case only (the training step compiles for minutes)."""
    import subprocess

    script = os.path.join(os.path.dirname(common.__file__), "torch_compile.py")
    result = subprocess.run(
        [sys.executable, script, "--case", "predict", "--depth", "1", "--batch", "1",
         "--image-size", "32", "--repeats", "1"],
        env=dict(os.environ, KERAS_BACKEND="torch"), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| predict")]
    assert [row[1].strip() for row in rows] == ["eager", "compiled"]
    assert float(rows[1][5]) < 1e-4  # compiled computes what eager does
    assert rows[1][6].strip().endswith("calls") or rows[1][6].strip() == "never"


def test_projection_grad_table(monkeypatch):
    """The demo-sized cases, and the demo step with the sigmoid loss only (the
    whole recipe compiles two steps for over a minute)."""
    import functools

    import projection_grad

    from keras_siglip2 import demo

    monkeypatch.setattr(demo, "demo_model",
                        functools.partial(demo.demo_model, locca=False, self_supervised=None))
    rows = projection_grad.main(["--repeats", "1", "--demo-step", "--cases",
                                 *[name for name in projection_grad.CASES if name.startswith("demo")]])
    assert [row["case"] for row in rows][-1] == "demo training step (batch 32)"
    for row in rows:
        assert row["keras"] > 0 and row["ours"] > 0
    assert all(row["difference"] < 1e-4 for row in rows[:-1])
