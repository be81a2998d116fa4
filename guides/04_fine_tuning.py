# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fine-tuning on your own image–text data with `model.fit`
#
# From a folder of images with captions to a fine-tuned model you can load
# again: write the data in one of the accepted formats, turn it into training
# batches with `tf.data`, pick the losses, `compile`, `fit`, evaluate, save.
# The same code runs on JAX, TensorFlow and PyTorch.
#
# **Modes.** Online: start from the released `b16` checkpoint (SigLIP 2
# B/16 at 224 px; with all five losses this wants a GPU with ≥ 24 GB — pass
# `locca=False, self_supervised=None` below on smaller ones). Offline / in the
# tests (*small mode*): the ≈1M-parameter demo model for a few dozen steps on
# CPU. Set `SIGLIP2_GUIDE_MODE=small` or `full` to choose. Either way the
# "your own data" here is written from the package's demo dataset (coloured
# shapes with captions in five languages and boxed regions), so the guide
# needs no download; replace it with your files.

# %% [markdown]
# ## Choose the backend first
#
# Keras reads `KERAS_BACKEND` once, when it is first imported: set it before
# any `import keras` (or in the shell: `KERAS_BACKEND=torch python train.py`).
# In a notebook, restart the kernel to switch.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # or "tensorflow", "torch"

import json
import subprocess
import sys
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import keras_siglip2 as ks
from keras_siglip2.presets.hubs import probe

MODE = os.environ.get("SIGLIP2_GUIDE_MODE") or (
    "full" if probe("https://huggingface.co", timeout=3) is None else "small"
)
SMALL = MODE == "small"
print(f"mode: {MODE}, backend: {keras.backend.backend()}")

# %% [markdown]
# ## 1. Your data
#
# Four layouts are read directly (`ks.data.image_text_source` picks by what
# it is given):
#
# | layout | example |
# |---|---|
# | a folder of images with same-named `.txt` captions | `photos/001.jpg` + `photos/001.txt` |
# | JSON lines | `{"image": "img/001.jpg", "caption": "...", "regions": [{"box": [ymin, xmin, ymax, xmax], "text": "..."}]}` |
# | CSV | columns `image`, `caption`, optional `regions` (JSON) |
# | TFRecord | written by `ks.data.write_tfrecord` |
#
# plus in-memory arrays (`ks.data.from_arrays(images, captions)`) and any
# `tf.data.Dataset` of `{"image", "caption", "boxes", "region_texts"}`.
# Boxes are fractions of the image size, `[ymin, xmin, ymax, xmax]`.
# `regions` are optional; they feed the localisation losses. Image paths are
# relative to the JSONL file.
#
# Here we write 200 (small mode) or 3,000 training pairs as PNG files and a
# JSONL file.

# %%
NUM_TRAIN = 200 if SMALL else 3000
data_dir = Path("my_data")
(data_dir / "images").mkdir(parents=True, exist_ok=True)
with open(data_dir / "train.jsonl", "w", encoding="utf-8") as jsonl:
    for i, example in enumerate(ks.data.make_demo_examples(NUM_TRAIN, split="train")):
        name = f"images/{i:05d}.png"
        Image.fromarray(example["image"]).save(data_dir / name)
        regions = [
            {"box": [round(float(c), 4) for c in box], "text": text}
            for box, text in zip(example["boxes"], example["region_texts"])
        ]
        record = {"image": name, "caption": example["caption"], "regions": regions}
        jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
print(*open(data_dir / "train.jsonl", encoding="utf-8").readlines()[:3], sep="")

# %% [markdown]
# ## 2. Read it as a `tf.data` pipeline
#
# `image_text_source` returns a `tf.data.Dataset` of raw examples. Images
# that cannot be decoded are skipped and counted in a `SkippedRecords`
# object, so one bad file never stops an epoch.

# %%
skipped = ks.data.SkippedRecords()
raw = ks.data.image_text_source(str(data_dir / "train.jsonl"), skipped=skipped)
print(raw.element_spec)
first = next(iter(raw))
print("first caption:", first["caption"].numpy().decode())

# %% [markdown]
# ## 3. The model and its five losses
#
# SigLIP 2 trains with five losses. Each is an option of the model; the
# training batches carry what each one needs.
#
# | loss (log name) | what it teaches | switch |
# |---|---|---|
# | `sigmoid_loss` | image–text matching: every image against every caption of the batch, one binary decision per pair | always |
# | `captioning_loss` | LocCa: a small transformer decoder writes the caption from the image's patch tokens (half the time all at once from mask tokens) | `locca=True` |
# | `localization_loss` | LocCa: the same decoder answers referring expressions (region text → box) and grounded captions (box → region text); needs `regions` | `locca=True` |
# | `self_distillation_loss` | SILC: the image tower on 8 small local crops must match an EMA teacher's view of the whole image | `self_supervised=...` |
# | `masked_prediction_loss` | TIPS: with half the patches masked, the tower must predict the teacher's per-patch outputs | `self_supervised=...` |
#
# The last two switch on late in training (`compile(self_supervised_start=0.8)`
# by default, i.e. at 80 % of `total_steps`, as in the paper); until then
# they are exactly zero and cost nothing. Released checkpoints carry no
# decoder or self-supervised heads: `from_preset(..., locca=True,
# self_supervised=...)` adds fresh ones.

# %% [markdown]
# In small mode the starting point is a tiny architecture (width 32, two
# layers per tower, 32 px images, the demo's SentencePiece vocabulary) with
# random weights, saved as a preset first so that the code below is the same
# as for a real checkpoint. It also shows how to assemble a model of your own
# shape: a backbone config, a tokenizer and an image converter. If you ran
# `siglip2 demo` here, its trained model (`siglip2_demo/preset`) is used
# instead (slower to compile on CPU).


# %%
def tiny_random_preset(path="guide_models/tiny_random"):
    """A tiny random SigLIP 2 (fixed 32 px images, demo vocabulary) saved as a preset."""
    from keras_siglip2.preprocessing import (
        SigLIP2ImageConverter, SigLIP2Preprocessor, SigLIP2Tokenizer,
    )

    if not os.path.isdir(path):
        keras.utils.set_random_seed(0)  # before the tokenizer: it resets TF's kernels
        tokenizer = SigLIP2Tokenizer(proto=str(ks.data.demo_vocabulary_path()), sequence_length=16)
        config = ks.configs.tiny(vocabulary_size=tokenizer.vocabulary_size(), image_size=32)
        backbone = ks.SigLIP2Backbone.from_config(config)
        preprocessor = SigLIP2Preprocessor(tokenizer, SigLIP2ImageConverter(32))
        ks.SigLIP2(backbone, preprocessor, locca=False).save_to_preset(path)
    return path


if SMALL:
    trained = os.environ.get("SIGLIP2_DEMO_PRESET", "siglip2_demo/preset")
    START = trained if os.path.isdir(trained) else tiny_random_preset()
    # Small self-supervised heads for a tiny model (the defaults are sized for B/16
    # and up): fewer prototypes, 8 local crops of 3 × 3 (demo) or 2 × 2 patches.
    patches = 3 if START == trained else 2
    SELF_SUPERVISED = dict(num_prototypes=256, num_patch_prototypes=64, head_hidden_dim=64,
                           head_bottleneck_dim=32, local_view_patches=patches,
                           teacher_momentum=0.99)
    model = ks.SigLIP2.from_preset(START, locca=True, num_coordinate_bins=32,
                                   self_supervised=SELF_SUPERVISED)
    STEPS, BATCH, LEARNING_RATE = 40, 16, 3e-3
else:
    START = "b16"
    model = ks.SigLIP2.from_preset(START, locca=True, self_supervised=True)
    STEPS, BATCH, LEARNING_RATE = 600, 32, 1e-5
print(f"start: {START}; {model.count_params():,} parameters "
      f"(backbone {model.backbone.count_params():,}); loss weights {model.default_loss_weights()}")

# %% [markdown]
# ## 4. A baseline before training
#
# Zero-shot accuracy on held-out images of the same kind. For the demo data
# the class names are the 36 "colour shape" pairs. `evaluate_zero_shot`
# also reads a folder of class sub-folders, or a `tf.data` dataset with
# `class_names=`.

# %%
NUM_TEST = 60 if SMALL else 360
test_data = f"demo:{NUM_TEST}"  # the demo's held-out split
before = ks.evaluation.evaluate_zero_shot(model, test_data, templates="plain", verbose=0)
print(f"before: top-1 {before['metrics']['top1']:.3f}, top-5 {before['metrics']['top5']:.3f} "
      f"(chance {before['chance']['top1']:.3f})")

# %% [markdown]
# ## 5. Training batches
#
# `ks.data.training_batches(raw, model, batch_size)` preprocesses images
# (fixed-size or NaFlex), tokenizes captions, builds the decoder sequences for
# LocCa and the local crops and patch masks for self-supervision, shuffles
# and batches — all in `tf.data`, reproducibly from `seed`. `.repeat()` the
# raw dataset so that `fit` can run any number of steps.

# %%
batches = ks.data.training_batches(raw.repeat(), model, batch_size=BATCH, seed=0)
for name, spec in batches.element_spec.items():
    print(f"{name:22s} {spec.dtype.name:8s} {tuple(spec.shape)}")

# %% [markdown]
# ## 6. Compile and fit
#
# `compile()` defaults to the paper's optimiser: Adam with decoupled weight
# decay on kernels, global-norm clipping at 1, linear warm-up then cosine
# decay over `total_steps`. Useful options:
#
# - `loss_weights={"sigmoid": 1, "locca": 1, "self_distillation": ..., "masked_prediction": ...}`
# - `sigmoid_loss="chunked"` to bound memory on large batches on one device
#   (guide 5 covers the ring loss on many);
# - `self_supervised_start`: a fraction of `total_steps` or a step number.
#
# Here the self-supervised losses switch on half-way so that all five show
# up in the logs.

# %%
model.compile(
    learning_rate=LEARNING_RATE,
    warmup_steps=STEPS // 10,
    total_steps=STEPS,
    self_supervised_start=0.5,
)
EPOCHS = 4  # "epochs" here are logging intervals over the repeated stream
history = model.fit(batches, steps_per_epoch=STEPS // EPOCHS, epochs=EPOCHS, verbose=2)
print("images skipped as undecodable:", skipped.count)

# %%
logged = history.history
losses = [name for name in logged if name.endswith("loss")]
figure, axes = plt.subplots(1, len(losses), figsize=(2.6 * len(losses), 2.6))
for axis, name in zip(axes, losses):
    axis.plot(np.arange(1, EPOCHS + 1) * (STEPS // EPOCHS), logged[name], "o-")
    axis.set_title(name, fontsize=8)
    axis.set_xlabel("step", fontsize=8)
plt.tight_layout()
plt.show()
print({name: round(float(values[-1]), 4) for name, values in logged.items()})

# %% [markdown]
# The self-supervised losses read 0 until the switch-on step, then start.
# `temperature` and `bias` are the learned scalars of the sigmoid loss.

# %% [markdown]
# ## 7. Evaluate and save
#
# `save_to_preset` writes the backbone, the preprocessing and the training
# heads; `SigLIP2.from_preset(path)` loads all of it back, ready for
# inference or to continue training.

# %%
after = ks.evaluation.evaluate_zero_shot(model, test_data, templates="plain", verbose=0)
print(f"after {STEPS} steps: top-1 {after['metrics']['top1']:.3f} (before {before['metrics']['top1']:.3f}), "
      f"top-5 {after['metrics']['top5']:.3f} (before {before['metrics']['top5']:.3f})")
if SMALL:
    print("(small mode: a few dozen CPU steps; `siglip2 demo` trains this model for 900 steps)")

model.save_to_preset("my_finetuned_siglip2")
reloaded = ks.SigLIP2.from_preset("my_finetuned_siglip2")
image = ks.data.make_demo_example(0, split="test")["image"]
same = np.allclose(model.embed_images([image]), reloaded.embed_images([image]), atol=1e-6)
print("reloaded model gives the same embeddings:", same)
print(sorted(os.listdir("my_finetuned_siglip2")))

# %% [markdown]
# ## 8. Adapting cheaply: LoRA and LiT
#
# Most adaptations of a released checkpoint need neither the decoder nor the
# self-supervised heads, nor every weight trained:
#
# - **LoRA** (`backbone.enable_lora(rank)`): every weight is frozen and small
#   rank-`rank` factors are added to the attention query and value
#   projections and to the MLPs of both towers; `fit` trains the factors only
#   (`train_logit_head=True` adds the temperature and bias), and
#   `save_lora_weights` stores just them.
# - **LiT** (locked image or text tower): set a tower's `trainable = False`
#   before `compile`; it stays bit-identical and gets no optimizer state.
#
# `compile(recipe="fine_tuning")` starts from the paper's last-stage settings
# (learning rate 1e-5, no weight decay); a short run like this one takes a
# larger rate.

# %%
def adapt(method):
    """The model saved above, sigmoid loss only, adapted with `method`."""
    adapted = ks.SigLIP2.from_preset("my_finetuned_siglip2", locca=False, self_supervised=None)
    if method == "lora":
        adapted.backbone.enable_lora(4)
    else:  # LiT: lock the text tower, tune the image tower
        adapted.backbone.text_encoder.trainable = False
    rate = (3e-3 if method == "lora" else 1e-3) if SMALL else (1e-4 if method == "lora" else 1e-5)
    adapted.compile(recipe="fine_tuning", learning_rate=rate, total_steps=STEPS // 2)
    stream = ks.data.training_batches(raw.repeat(), adapted, batch_size=BATCH, seed=1)
    adapted.fit(stream, steps_per_epoch=STEPS // 2, epochs=1, verbose=0)
    trainable = sum(int(np.prod(v.shape)) for v in adapted.trainable_variables)
    top1 = ks.evaluation.evaluate_zero_shot(adapted, test_data, templates="plain", verbose=0)
    print(f"{method}: {trainable:,} of {adapted.count_params():,} parameters trained, "
          f"top-1 {top1['metrics']['top1']:.3f}")
    return adapted


lora_model = adapt("lora")
lora_model.backbone.save_lora_weights("adapter.lora.h5")
print(f"adapter file: {os.path.getsize('adapter.lora.h5') / 2**10:.0f} KiB")
lit_model = adapt("lit")

# %% [markdown]
# ## 9. Another backend, and the command line
#
# Nothing above depends on the backend. To run it on TensorFlow or PyTorch,
# start a new process (or restart the kernel) with `KERAS_BACKEND` set. The
# `siglip2 train CONFIG` command runs the same `fit` from a JSON config,
# resumes after an interruption, and takes `--backend`. Here it trains the
# tiny architecture from scratch on the same JSONL file for a few steps on
# TensorFlow (sigmoid loss only, `"locca": false`, to keep it quick); give
# `"preset": "my_finetuned_siglip2"` instead of `"model"` to continue from
# the model saved above.

# %%
config = {
    "model": "tiny",
    "locca": False,
    "data": str(data_dir / "train.jsonl"),
    "steps": 4 if SMALL else 200,
    "batch_size": BATCH,
    "steps_per_checkpoint": 2 if SMALL else 50,
    "learning_rate": 3e-3,
    "output_dir": "run_tensorflow",
}
Path("train_tensorflow.json").write_text(json.dumps(config, indent=2))
command = [sys.executable, "-m", "keras_siglip2.cli", "train", "train_tensorflow.json",
           "--backend", "tensorflow"]
print("$ siglip2 train train_tensorflow.json --backend tensorflow")
result = subprocess.run(command, capture_output=True, text=True)
print("\n".join(line for line in result.stdout.splitlines() if "loss" in line or "Wrote" in line))
if result.returncode != 0:
    raise RuntimeError(result.stderr[-3000:])

# %% [markdown]
# ## Where next
#
# - Larger runs: [05_distributed](05_distributed.ipynb) (many accelerators,
#   the ring sigmoid loss, memory per device).
# - Serving the result: [06_convert_and_export](06_convert_and_export.ipynb)
#   (SavedModel, ONNX).
# - Mixed precision: `keras.config.set_dtype_policy("mixed_bfloat16")` before
#   building the model (variables, losses and logits stay in float32);
#   `"mixed_float16"` trains with loss scaling on GPUs, and on CPU with
#   TensorFlow or PyTorch.
# - Smaller weights for serving: `model.backbone.quantize("int8")` (also
#   `"int4"`, `"float8"`); the quantized model saves and loads as a preset.
# - Longer texts than the checkpoint's 64 tokens:
#   `SigLIP2.from_preset(..., text_sequence_length=128)`, then fine-tune.
