"""`siglip2 train CONFIG`: train or fine-tune from a small JSON config.

```json
{"model": "tiny", "data": "train.jsonl", "steps": 1000, "batch_size": 32,
 "output_dir": "siglip2_run"}
```

`model` is `"tiny"`, `"tiny-naflex"` or a `{"vision": ..., "text": ...}` config
(see `keras_siglip2.configs`), trained from scratch with the SentencePiece
model in `tokenizer` (default: the demo vocabulary); or give `preset` instead
(an alias such as `"so400m"`, a path or a handle) to fine-tune. `data` is a
folder, a `.jsonl`, `.csv` or `.tfrecord` file (see `keras_siglip2.data`) or
`"demo[:N[:SEED]]"` (the demo's training split).

Optional: `learning_rate` (1e-3), `warmup_steps` (steps // 10, at most 1000),
`seed` (0), `steps_per_checkpoint` (100), `max_num_patches` (NaFlex: an int or
a list of lengths), `locca` (true). Relative paths are relative to the config
file. The run is exactly resumable: the same command continues from the last
checkpoint in `output_dir/checkpoint`. At the end it writes `history.csv` and
a preset in `output_dir/preset`.
"""

import json
from pathlib import Path

from keras_siglip2.evaluation.data import demo_split

REQUIRED = ("data", "steps", "batch_size", "output_dir")
OPTIONAL = {
    "preset": None,
    "model": None,
    "tokenizer": None,
    "learning_rate": 1e-3,
    "warmup_steps": None,
    "seed": 0,
    "steps_per_checkpoint": 100,
    "max_num_patches": None,
    "locca": True,
}


def load_config(path):
    """Read and check a training config; returns a dict with every key set."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object; see `siglip2 train --help`.")
    unknown = sorted(set(config) - set(REQUIRED) - set(OPTIONAL))
    missing = [key for key in REQUIRED if key not in config]
    if unknown or missing:
        raise ValueError(
            f"{path}: unknown keys {unknown}, missing keys {missing}; expected "
            f"{list(REQUIRED)} and optionally {sorted(OPTIONAL)}."
        )
    if (config.get("preset") is None) == (config.get("model") is None):
        raise ValueError(f"{path}: give exactly one of 'preset' and 'model'.")
    for key, low in (("steps", 1), ("batch_size", 1), ("steps_per_checkpoint", 1), ("seed", 0)):
        value = config.get(key, OPTIONAL.get(key))
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{path}: '{key}' must be an integer ≥ {low}; got {value!r}.")
    if not isinstance(config.get("locca", True), bool):
        raise ValueError(f"{path}: 'locca' must be true or false; got {config['locca']!r}.")
    config = {**OPTIONAL, **config}
    base = path.parent
    for key in ("data", "output_dir", "tokenizer", "preset"):
        value = config[key]
        if isinstance(value, str) and not demo_split(value) and "://" not in value:
            candidate = base / value
            if key != "preset" or candidate.exists():
                config[key] = str(candidate)
    return config


def build_model(config):
    """A `SigLIP2` with preprocessor from the config's `preset` or `model`."""
    from keras_siglip2 import configs
    from keras_siglip2.data import demo_vocabulary_path
    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.models.siglip2 import SigLIP2
    from keras_siglip2.preprocessing import (
        NaFlexImageConverter,
        SigLIP2ImageConverter,
        SigLIP2Preprocessor,
        SigLIP2Tokenizer,
    )

    if config["preset"] is not None:
        return SigLIP2.from_preset(config["preset"], locca=config["locca"])
    architecture = config["model"]
    proto = config["tokenizer"] or str(demo_vocabulary_path())
    if isinstance(architecture, str):
        if architecture not in ("tiny", "tiny-naflex"):
            raise ValueError(
                f"'model' must be 'tiny', 'tiny-naflex' or a {{'vision', 'text'}} config; "
                f"got {architecture!r}."
            )
        vocabulary = SigLIP2Tokenizer(proto=proto).vocabulary_size()
        architecture = configs.tiny(naflex=architecture == "tiny-naflex", vocabulary_size=vocabulary)
    if not isinstance(architecture, dict) or set(architecture) != {"vision", "text"}:
        raise ValueError("'model' must be a dict with exactly the keys 'vision' and 'text'.")
    text, vision = architecture["text"], architecture["vision"]
    tokenizer = SigLIP2Tokenizer(proto=proto, sequence_length=text.get("sequence_length", 64))
    if text.get("vocabulary_size") != tokenizer.vocabulary_size():
        raise ValueError(
            f"The text tower's vocabulary_size {text.get('vocabulary_size')} does not match "
            f"the tokenizer's {tokenizer.vocabulary_size()}."
        )
    if vision.get("image_size") is None:
        converter = NaFlexImageConverter(vision["patch_size"], vision.get("max_num_patches", 256))
    else:
        converter = SigLIP2ImageConverter(vision["image_size"])
    backbone = SigLIP2Backbone.from_config(architecture)
    return SigLIP2(backbone, SigLIP2Preprocessor(tokenizer, converter), locca=config["locca"])


def training_source(data):
    """The raw example dataset named by the config's `data`."""
    from keras_siglip2.data import demo_dataset, image_text_source

    split = demo_split(data)
    if split:
        return demo_dataset(split[0], seed=split[1], split="train")
    return image_text_source(data)


def run_training(config, verbose="auto"):
    """Train as `config` (a dict from `load_config`, or a path) says, for
    exactly its `steps`; returns the last interval's logs. Resumes from
    `output_dir/checkpoint` if present; SIGINT / SIGTERM stop at the next step
    with a checkpoint (`callbacks.TrainingInterrupted`)."""
    import sys

    import keras

    from keras_siglip2 import callbacks
    from keras_siglip2.data import training_batches

    if not isinstance(config, dict):
        config = load_config(config)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    keras.utils.set_random_seed(config["seed"])
    output_dir = Path(config["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    steps, warmup = config["steps"], config["warmup_steps"]
    model.compile(
        learning_rate=config["learning_rate"],
        warmup_steps=min(1000, steps // 10) if warmup is None else warmup,
        total_steps=steps,
    )

    def make_batches():
        return training_batches(
            training_source(config["data"]).repeat(), model, config["batch_size"],
            seed=config["seed"], max_num_patches=config["max_num_patches"],
        )

    logs = callbacks.fit_resumably(
        model, make_batches, output_dir, steps, config["steps_per_checkpoint"], verbose
    )
    model.save_to_preset(output_dir / "preset")
    print(f"Wrote the trained preset {output_dir / 'preset'} (load it with SigLIP2.from_preset).")
    return logs
