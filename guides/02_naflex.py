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
# # NaFlex: native aspect ratio and the sequence-length trade-off
#
# Fixed-resolution SigLIP 2 squashes every image to a square (224², 384², …).
# That distorts documents, receipts, screenshots and panoramas. The **NaFlex**
# variants (`b16-naflex`, `so400m-naflex`) instead:
#
# 1. resize the image, keeping its aspect ratio, to the largest size whose
#    patch grid `h × w` holds at most `max_num_patches` patches;
# 2. cut it into `P × P` patches and pad the sequence to `max_num_patches`
#    (the padding is masked);
# 3. resize the learned 16 × 16 position-embedding grid to `h × w` for each
#    image.
#
# `max_num_patches` is chosen **at inference time**: more patches mean more
# detail and more compute (attention grows with the square of the sequence
# length). This guide shows the grids NaFlex picks for a document and a
# panorama, and measures the cost and the effect on embeddings.
#
# **Modes.** Online: `b16-naflex` (patch 16). Offline / in the tests
# (*small mode*): the demo model, also NaFlex, with patch 8. Set
# `SIGLIP2_GUIDE_MODE=small` or `full` to choose.

# %%
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data

import keras_siglip2 as ks
from keras_siglip2.presets.hubs import probe

MODE = os.environ.get("SIGLIP2_GUIDE_MODE") or (
    "full" if probe("https://huggingface.co", timeout=3) is None else "small"
)
print("mode:", MODE)


def demo_preset():
    """Path of the demo model: trained (if `siglip2 demo` ran here) or random."""
    trained = os.environ.get("SIGLIP2_DEMO_PRESET", "siglip2_demo/preset")
    if os.path.isdir(trained):
        print(f"Using the trained demo model in {trained}.")
        return trained
    path = "guide_models/demo_random"
    if not os.path.isdir(path):
        from keras_siglip2.demo import demo_model

        demo_model(locca=False, self_supervised=None).save_to_preset(path)
    print("Using the demo architecture with RANDOM weights (run `siglip2 demo` to train it).")
    return path


model = ks.SigLIP2.from_preset("b16-naflex" if MODE == "full" else demo_preset())
PATCH = model.backbone.vision_encoder.patch_size
print("NaFlex:", model.backbone.naflex, "| patch size:", PATCH,
      "| default max_num_patches:", model.preprocessor.image_converter.max_num_patches)

# %% [markdown]
# ## A document and a panorama
#
# Both ship with scikit-image: a scanned page of text (wider than tall) and a
# 4:1 strip cut from a photo as a stand-in for a panorama. A square photo is
# the control.


# %%
def rgb(image):
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


document = rgb(skimage.data.page())                      # 191 × 384, grey → RGB
panorama = skimage.data.rocket()[100:260]                 # 160 × 640 strip
square = skimage.data.astronaut()                         # 512 × 512
pictures = {"document": document, "panorama": panorama, "square": square}
for name, image in pictures.items():
    print(f"{name:9s} {image.shape[1]} × {image.shape[0]} px, aspect {image.shape[1] / image.shape[0]:.2f}")

# %% [markdown]
# ## The grid NaFlex chooses
#
# `model.image_inputs(images, max_num_patches=N)` runs the preprocessing alone
# and returns the model inputs: `patches (B, N, P·P·3)`, `patch_mask (B, N)`
# and `spatial_shapes (B, 2)`, the `(h, w)` patch grid of each image.

# %%
budgets = [16, 64, 256] if MODE == "small" else [64, 256, 1024]
for name, image in pictures.items():
    for budget in budgets:
        inputs = model.image_inputs([image], max_num_patches=budget)
        h, w = inputs["spatial_shapes"][0]
        used = int(inputs["patch_mask"][0].sum())
        print(f"{name:9s} N={budget:5d}: grid {h:2d} × {w:2d} = {used:4d} patches "
              f"({w * PATCH} × {h * PATCH} px, aspect {w / h:.2f})")


# %% [markdown]
# The aspect ratio survives up to rounding to whole patches. Seen as
# pictures: the resized image with its patch grid, next to what a
# fixed-resolution model with the same number of patches would see (a square).


# %%
def resized_view(image, budget):
    """The image as NaFlex sees it: patches put back in place, [-1, 1] → [0, 1]."""
    inputs = model.image_inputs([image], max_num_patches=budget)
    h, w = inputs["spatial_shapes"][0]
    patches = inputs["patches"][0, : h * w].reshape(h, w, PATCH, PATCH, 3)
    pixels = patches.transpose(0, 2, 1, 3, 4).reshape(h * PATCH, w * PATCH, 3)
    return (pixels + 1) / 2, (h, w)


def squashed_view(image, budget):
    """The fixed-resolution preprocessing at the same patch count: a square."""
    side = int(np.sqrt(budget)) * PATCH
    converter = ks.preprocessing.SigLIP2ImageConverter(side)
    pixels = keras.ops.convert_to_numpy(converter([image]))[0]
    return (pixels + 1) / 2, side


budget = budgets[1]
figure, axes = plt.subplots(len(pictures), 2, figsize=(9, 2.6 * len(pictures)))
for row, (name, image) in enumerate(pictures.items()):
    view, (h, w) = resized_view(image, budget)
    axes[row, 0].imshow(view)
    axes[row, 0].set_xticks(np.arange(0, w * PATCH + 1, PATCH) - 0.5, labels=[])
    axes[row, 0].set_yticks(np.arange(0, h * PATCH + 1, PATCH) - 0.5, labels=[])
    axes[row, 0].grid(color="white", linewidth=0.5)
    axes[row, 0].tick_params(length=0)
    axes[row, 0].set_title(f"{name}: NaFlex {h}×{w} patches (N ≤ {budget})", fontsize=9)
    squashed, side = squashed_view(image, budget)
    axes[row, 1].imshow(np.clip(squashed, 0, 1))
    axes[row, 1].set_title(f"fixed resolution: squashed to {side}×{side}", fontsize=9)
    axes[row, 1].axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Cost and quality against sequence length
#
# The same images embedded with growing `max_num_patches`. Time is per image
# (after a warm-up call, since the first call at each length compiles). The
# second number is the cosine similarity between the embedding at `N` and the
# embedding at the largest `N`: how much the representation still changes.

# %%
budgets = [16, 32, 64, 128, 256] if MODE == "small" else [64, 128, 256, 576, 1024]
images = list(pictures.values())
embeddings, seconds = {}, {}
for budget in budgets:
    model.embed_images(images, max_num_patches=budget)  # compile for this length
    start = time.perf_counter()
    embeddings[budget] = model.embed_images(images, max_num_patches=budget)
    seconds[budget] = (time.perf_counter() - start) / len(images)
reference = embeddings[budgets[-1]]
agreement = {b: (e * reference).sum(1) for b, e in embeddings.items()}
print(" N      ms/image   cosine to N_max:", " ".join(f"{n:>9s}" for n in pictures))
for budget in budgets:
    print(f"{budget:5d} {1000 * seconds[budget]:10.1f}   {'':16s}",
          " ".join(f"{c:9.3f}" for c in agreement[budget]))

figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
left.plot(budgets, [1000 * seconds[b] for b in budgets], "o-")
left.set(xscale="log", xlabel="max_num_patches", ylabel="ms per image", title="cost")
for i, name in enumerate(pictures):
    right.plot(budgets, [agreement[b][i] for b in budgets], "o-", label=name)
right.set(xscale="log", xlabel="max_num_patches", ylabel="cosine to largest N",
          title="how much the embedding still moves")
right.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Rules of thumb for the released NaFlex checkpoints: 256 patches (the
# default) is the usual trade-off; documents, text and thin panoramas gain
# from 576–1024; small thumbnails need fewer. The model was trained on
# 128, 256, 576, 784 and 1024 patches, so those lengths are the safest.
#
# ## NaFlex in training
#
# `ks.data.training_batches(raw, model, batch_size, max_num_patches=[128, 256, 576])`
# draws one length per group of examples: each batch has a single length (for
# compiled steps), and lengths vary across the epoch. The command line takes
# `--max-num-patches` wherever images are read.
