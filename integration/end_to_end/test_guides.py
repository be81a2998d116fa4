"""Every guide in `guides/` runs top to bottom in small mode (offline, tiny or
demo-sized models), and every notebook matches its `.py` source.

Each guide runs as a script in its own process (fresh backend, devices set up
before JAX starts, as in a new notebook kernel), in a scratch working
directory; two at a time, since the guides spend much of their time
compiling on one core each.
"""

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("guides_build", ROOT / "guides" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = build.guide_sources()
GUIDE_TIMEOUT_S = 900
PARALLEL = 2

pytestmark = pytest.mark.slow


def _run_guide(source, work_dir):
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SIGLIP2_GUIDE_MODE="small", CI="true", MPLBACKEND="Agg",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    for key in ("KERAS_BACKEND", "XLA_FLAGS", "SIGLIP2_DEMO_PRESET"):
        env.pop(key, None)  # each guide chooses its own
    try:
        result = subprocess.run(
            [sys.executable, str(source)], cwd=work_dir, env=env, capture_output=True,
            text=True, timeout=GUIDE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return source, None, f"timed out after {GUIDE_TIMEOUT_S} s", False
    output = result.stdout[-3000:] + "\n" + result.stderr[-6000:]
    return source, result.returncode, output, "mode: small" in result.stdout


@pytest.fixture(scope="module")
def guide_runs(tmp_path_factory):
    """Run every guide once (in parallel); `{name: (returncode, output tail, ran small)}`."""
    root = tmp_path_factory.mktemp("guides")
    with ThreadPoolExecutor(PARALLEL) as pool:
        # The slowest first, so that the pool does not end on a long tail.
        order = sorted(SOURCES, key=lambda s: not s.stem.startswith(("04", "06")))
        runs = list(pool.map(lambda s: _run_guide(s, root / s.stem), order))
    return {source.stem: (code, output, small) for source, code, output, small in runs}


def test_there_are_six_guides():
    assert [s.stem[:2] for s in SOURCES] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_guide_runs_in_small_mode(source, guide_runs):
    code, output, small = guide_runs[source.stem]
    assert code == 0, f"{source.name} failed (exit {code}):\n{output}"
    assert small, f"{source.name} did not say it ran in small mode"


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_notebook_matches_its_source(source):
    problem = build.out_of_sync(source)
    assert problem is None, f"{problem}; run `.venv/bin/python guides/build.py {source.stem[:2]}`"


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_guide_opens_in_colab(source):
    import nbformat

    saved = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    repository = build.repository()  # the one setting: [project.urls] in pyproject.toml
    path = repository.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{path}/blob/main/guides/{source.stem}.ipynb"
    assert badge in saved.cells[0].source
    install = saved.cells[1].source  # installs the package in Colab, says it is unpublished
    assert '"google.colab" in sys.modules' in install and f"git+{repository}" in install
    assert "not yet published" in install.replace("\n# ", " ")
