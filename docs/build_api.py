"""Build the HTML API reference into `docs/api/` from the docstrings (pdoc).

    python3 dev.py docs                           # this script in the project's .venv/
    .venv/bin/python docs/build_api.py            # the same: docs/api/index.html, keras_siglip2/…
    .venv/bin/pdoc keras_siglip2                  # or browse it live on localhost

The pages are generated, so git ignores them; `docs/api.md` is the
hand-written overview that points into them.
"""

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api"
# The package resolves its public names lazily, which pdoc cannot follow, so the
# modules that define them are listed explicitly.
MODULES = [
    "keras_siglip2",
    "keras_siglip2.models.siglip2",
    "keras_siglip2.models.inference",
    "keras_siglip2.preprocessing.inputs",
    "keras_siglip2.models.backbone",
    "keras_siglip2.models.vision_encoder",
    "keras_siglip2.models.text_encoder",
    "keras_siglip2.configs",
    "keras_siglip2.data",
    "keras_siglip2.preprocessing",
    "keras_siglip2.losses",
    "keras_siglip2.distribution",
    "keras_siglip2.evaluation",
    "keras_siglip2.evaluation.dense_probe",
    "keras_siglip2.presets",
    "keras_siglip2.visualize",
    "keras_siglip2.export",
    "keras_siglip2.callbacks",
    "keras_siglip2.training",
    "keras_siglip2.demo",
    "keras_siglip2.cli",
]


def main():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import pdoc
    import pdoc.render

    shutil.rmtree(OUTPUT, ignore_errors=True)  # generated only: nothing else lives there
    pdoc.render.configure(
        docformat="markdown",
        footer_text="keras_siglip2 API reference",
        show_source=False,
        search=True,
    )
    pdoc.pdoc(*MODULES, output_directory=OUTPUT)
    pages = sorted(OUTPUT.rglob("*.html"))
    print(f"wrote {len(pages)} pages under {OUTPUT}")


if __name__ == "__main__":
    main()
