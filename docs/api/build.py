"""Regenerate the HTML API reference in `docs/api/` from the docstrings (pdoc).

    .venv/bin/python docs/api/build.py            # writes docs/api/index.html, keras_siglip2/…
    .venv/bin/pdoc keras_siglip2                  # or browse it live on localhost

`docs/api.md` is the hand-written overview that links into these pages.
"""

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The package resolves its public names lazily, which pdoc cannot follow, so the
# modules that define them are listed explicitly.
MODULES = [
    "keras_siglip2",
    "keras_siglip2.models.siglip2",
    "keras_siglip2.models.inference",
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

    for old in [HERE / "keras_siglip2", HERE / "keras_siglip2.html", HERE / "index.html",
                HERE / "search.js"]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    pdoc.render.configure(
        docformat="markdown",
        footer_text="keras_siglip2 API reference",
        show_source=False,
        search=True,
    )
    pdoc.pdoc(*MODULES, output_directory=HERE)
    pages = sorted(p.relative_to(HERE) for p in HERE.rglob("*.html"))
    print(f"wrote {len(pages)} pages under {HERE}")


if __name__ == "__main__":
    main()
