"""Regenerate the guide notebooks (`guides/NN_name.ipynb`) from their jupytext
sources (`guides/NN_name.py`), executed top to bottom so that every cell's
real output is saved in the notebook.

    .venv/bin/python guides/build.py                      # every guide, small mode
    .venv/bin/python guides/build.py 01 04                # some of them
    .venv/bin/python guides/build.py --mode full          # real presets (needs internet)
    .venv/bin/python guides/build.py --demo-preset siglip2_demo/preset   # trained demo model
    .venv/bin/python guides/build.py --check              # only check .ipynb ↔ .py sync

Each guide runs in a fresh kernel with its working directory in a scratch
folder (`guides/_work/NAME/`, git-ignored), so files a guide writes never land
next to the sources. A cell that raises stops the build with an error.

The sources hold neither the "Open in Colab" badge nor the cell that installs
the package in Colab: both are written here, from the one setting
`[project.urls] Repository` in pyproject.toml. A guide that needs more in
Colab says so in its header, e.g. `colab_install: {extras: [export],
packages: [transformers, torch]}`.
"""

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's dependency tomli
    import tomli as tomllib

GUIDES_DIR = Path(__file__).resolve().parent
WORK_DIR = GUIDES_DIR / "_work"
COLAB = "https://colab.research.google.com"
COLAB_CHECKOUT = "/content/keras-siglip2"


def guide_sources(selection=()):
    """The guide sources `NN_*.py`, optionally only those whose name starts with
    one of `selection` (e.g. "01", "04_fine")."""
    sources = sorted(GUIDES_DIR.glob("[0-9][0-9]_*.py"))
    if selection:
        sources = [s for s in sources if any(s.stem.startswith(x) for x in selection)]
    return sources


def repository():
    """The project's GitHub address: `[project.urls] Repository` in pyproject.toml."""
    with open(GUIDES_DIR.parent / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def colab_badge(stem):
    """The "Open in Colab" badge (markdown) of guide `stem`."""
    path = repository().removeprefix("https://github.com/")
    return (f"[![Open In Colab]({COLAB}/assets/colab-badge.svg)]"
            f"({COLAB}/github/{path}/blob/main/guides/{stem}.ipynb)")


def install_cell(extras=(), packages=()):
    """Source of the code cell that installs the package (with `extras`) and
    `packages` in Colab, from a checkout uploaded to `COLAB_CHECKOUT` while the
    repository is not published."""
    requirement = "keras-siglip2" + (f"[{','.join(extras)}]" if extras else "")
    more = "".join(f", {json.dumps(p)}" for p in packages)
    return f"""\
# In Colab: install keras-siglip2 (does nothing elsewhere). The package is not
# yet published at {repository()}; until it is,
# upload a checkout of the repository to {COLAB_CHECKOUT} first.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    source = "git+{repository()}"
    if os.path.isdir("{COLAB_CHECKOUT}"):
        source = "file://{COLAB_CHECKOUT}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"{requirement} @ {{source}}"{more}], check=True)"""


def read_source(path):
    """The notebook of a percent-format `.py` source, with the Colab badge
    under its title and the install cell after its introduction."""
    import jupytext
    import nbformat

    notebook = jupytext.read(path, fmt="py:percent")
    install = notebook.metadata.pop("colab_install", {})
    notebook.metadata["jupytext"].pop("notebook_metadata_filter", None)  # added for it
    intro = notebook.cells[0]
    title, _, rest = intro.source.partition("\n")
    intro.source = f"{title}\n\n{colab_badge(path.stem)}\n\n{rest.lstrip()}"
    cell = nbformat.v4.new_code_cell(install_cell(**install))
    notebook.cells.insert(1, cell)
    return notebook


def code_cells(notebook):
    """The code cells' sources, whitespace-normalised, for the sync check."""
    return [cell.source.strip() for cell in notebook.cells if cell.cell_type == "code"]


def out_of_sync(source):
    """A reason why `source`'s `.ipynb` does not match it, or None."""
    import nbformat

    target = source.with_suffix(".ipynb")
    if not target.exists():
        return f"{target.name} is missing"
    built = nbformat.read(target, as_version=4)
    expected = read_source(source)
    if code_cells(built) != code_cells(expected):
        return f"{target.name} has different code cells from {source.name}"
    if built.cells[0].source != expected.cells[0].source:
        return f"{target.name} has another introduction (or Colab badge) than {source.name}"
    unexecuted = [i for i, c in enumerate(built.cells)
                  if c.cell_type == "code" and c.get("execution_count") is None]
    if unexecuted:
        return f"{target.name} has code cells without saved outputs: {unexecuted[:5]}"
    return None


# C++ log lines of TensorFlow / XLA / absl that every fresh process prints.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl|[IWE]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]|"
    r"To enable the following instructions|normalizer\.cc\(\d+\) LOG\(INFO\))"
)


def clean(notebook):
    """Drop C++ log noise from stderr outputs and this machine's paths from all
    outputs, so that saved notebooks show what a reader needs and nothing local."""
    root = str(GUIDES_DIR.parent)
    site = os.path.dirname(os.path.dirname(os.__file__))
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = output["text"].splitlines(keepends=True)
                if output.get("name") == "stderr":
                    lines = [line for line in lines if not NOISE.match(line)]
                text = "".join(lines).replace(site, "<python>").replace(root, "<repo>")
                if not text.strip():
                    continue
                output["text"] = text
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
        cell.get("metadata", {}).pop("execution", None)  # per-run noise
    return notebook


def build(source, mode="small", demo_preset=None, timeout=1800):
    """Execute `source` in a fresh kernel and write `source.ipynb` with outputs."""
    import nbformat
    from nbclient import NotebookClient

    notebook = read_source(source)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3", "language": "python", "name": "python3",
    }
    notebook.metadata["accelerator"] = "GPU"  # Colab: offer a GPU runtime
    work = WORK_DIR / source.stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    environment = {
        "SIGLIP2_GUIDE_MODE": mode,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    if demo_preset:
        environment["SIGLIP2_DEMO_PRESET"] = str(Path(demo_preset).resolve())
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3",
            resources={"metadata": {"path": str(work)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nbformat.write(clean(notebook), source.with_suffix(".ipynb"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("guides", nargs="*", help="name prefixes, e.g. 01 04 (default: all)")
    parser.add_argument("--mode", default="small", choices=("small", "full"))
    parser.add_argument("--demo-preset", help="a trained demo preset for small mode")
    parser.add_argument("--check", action="store_true", help="only check that notebooks match sources")
    args = parser.parse_args(argv)
    sources = guide_sources(args.guides)
    if not sources:
        sys.exit(f"No guide matches {args.guides}.")
    if args.check:
        problems = [p for p in map(out_of_sync, sources) if p]
        print("\n".join(problems) or f"{len(sources)} notebooks match their sources.")
        return 1 if problems else 0
    for source in sources:
        start = time.time()
        print(f"building {source.stem}.ipynb ({args.mode} mode) …", flush=True)
        build(source, args.mode, args.demo_preset)
        print(f"  done in {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
