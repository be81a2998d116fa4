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
# # Dense features: patch–text heat maps and a linear segmentation probe
#
# Besides one pooled embedding per image, the image tower produces one token
# per patch. SigLIP 2 was trained with losses that act on these tokens
# (LocCa's decoder reads them; masked prediction trains them directly), so
# they are useful on their own. `model.patch_features(images)` returns them
# as one `(h, w, D)` array per image, on the image's patch grid.
#
# This guide
# 1. looks at the patch tokens (a PCA of them, as colours);
# 2. scores each patch against a text query — a heat map of where the text is;
# 3. fits a **linear segmentation probe**: a per-patch classifier on frozen
#    features, the standard measure of dense feature quality.
#
# **Modes.** Online: `b16-naflex` on scikit-image photos. Offline / in the
# tests (*small mode*): the demo model on the demo dataset, whose images come
# with pixel-exact segmentation masks. The probe always uses the demo dataset,
# since it needs masks. Set `SIGLIP2_GUIDE_MODE=small` or `full` to choose.

# %%
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import matplotlib.pyplot as plt
import numpy as np

import keras_siglip2 as ks
from keras_siglip2.evaluation import segmentation_miou
from keras_siglip2.evaluation.dense_probe import fit_linear_probe, patch_labels
from keras_siglip2.presets.hubs import probe
from keras_siglip2.visualize import patch_similarity

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

# %% [markdown]
# ## Patch tokens
#
# `space="tokens"` (the default) gives the un-pooled tokens after the final
# LayerNorm. Projecting them on their first three principal components and
# showing those as RGB makes the structure visible: patches of the same
# object get similar colours.

# %%
if MODE == "full":
    import skimage.data

    images = [skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.coffee()]
    queries = ["a cat", "an American flag", "a cup of coffee"]
else:
    examples = ks.data.make_demo_examples(3, split="test")
    images = [e["image"] for e in examples]
    names = ks.data.demo_class_names()
    queries = [names[e["label"]] for e in examples]

features = model.patch_features(images)
for image, tokens in zip(images, features):
    print(f"image {image.shape[1]}×{image.shape[0]} → patch features {tokens.shape}")


def pca_colours(tokens):
    """(h, w, D) → (h, w, 3) in [0, 1]: the first three principal components."""
    flat = tokens.reshape(-1, tokens.shape[-1])
    flat = flat - flat.mean(0)
    _, _, components = np.linalg.svd(flat, full_matrices=False)
    projected = flat @ components[:3].T
    projected = (projected - projected.min(0)) / (np.ptp(projected, 0) + 1e-6)
    return projected.reshape(*tokens.shape[:2], 3)


figure, axes = plt.subplots(2, len(images), figsize=(3 * len(images), 5))
for column, (image, tokens) in enumerate(zip(images, features)):
    axes[0, column].imshow(image)
    axes[1, column].imshow(pca_colours(tokens), interpolation="nearest")
    axes[1, column].set_title(f"PCA of {tokens.shape[0]}×{tokens.shape[1]} patch tokens", fontsize=8)
for axis in axes.ravel():
    axis.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Patch–text heat maps
#
# To compare a patch with a text, the patch must be in the joint image–text
# space. `space="joint"` pools every patch token *alone* through the MAP head
# (the same head that pools the whole image), then L2-normalises it.
# `keras_siglip2.visualize.patch_similarity(model, image, text)` returns the
# `(h, w)` cosine similarities with the text; `plot_patch_similarity` saves
# the same as a picture (the CLI's `siglip2 heatmap`).

# %%
figure, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.2))
for axis, image, query in zip(axes, images, queries):
    heat = patch_similarity(model, image, query)
    height, width = image.shape[:2]
    axis.imshow(image)
    axis.imshow(heat, cmap="inferno", alpha=0.55, extent=(0, width, height, 0),
                interpolation="bilinear")
    axis.set_title(f"{query!r}: {heat.min():.2f} … {heat.max():.2f}", fontsize=8)
    axis.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A linear segmentation probe
#
# Freeze the model, take each patch's token, and fit a softmax regression
# from token to the class at the patch centre. The demo dataset has 36
# classes (colour × shape) plus background, with a mask per image. We fit on
# training images and report the mean intersection-over-union (mIoU) of the
# per-patch predictions on held-out images, next to the trivial baseline that
# answers "background" everywhere.

# %%
num_train, num_test = (400, 100) if MODE == "full" else (60, 20)
train = ks.data.make_demo_examples(num_train, split="train")
test = ks.data.make_demo_examples(num_test, split="test")
num_classes = ks.data.NUM_CLASSES + 1  # + background


def patches_and_labels(examples):
    """Patch tokens and the label at each patch centre, flattened over images."""
    tokens = model.patch_features([e["image"] for e in examples])
    labels = [patch_labels(e["mask"], t.shape[:2]) for e, t in zip(examples, tokens)]
    return tokens, labels


train_tokens, train_labels = patches_and_labels(train)
test_tokens, test_labels = patches_and_labels(test)
x_train = np.concatenate([t.reshape(-1, t.shape[-1]) for t in train_tokens])
y_train = np.concatenate([m.ravel() for m in train_labels])
predict = fit_linear_probe(x_train, y_train, num_classes)
predicted = [predict(t.reshape(-1, t.shape[-1])).reshape(t.shape[:2]) for t in test_tokens]
y_test = np.concatenate([m.ravel() for m in test_labels])
y_predicted = np.concatenate([p.ravel() for p in predicted])
print(f"{len(x_train):,} training patches, {len(y_test):,} test patches")
print(f"probe mIoU            {segmentation_miou(y_predicted, y_test, num_classes):.3f}")
print(f"all-background mIoU   {segmentation_miou(np.zeros_like(y_test), y_test, num_classes):.3f}")
print(f"patch accuracy        {(y_predicted == y_test).mean():.3f}")

# %%
figure, axes = plt.subplots(3, 4, figsize=(10, 7.5))
for column in range(4):
    example = test[column]
    axes[0, column].imshow(example["image"])
    axes[1, column].imshow(test_labels[column], cmap="tab20", vmin=0, vmax=num_classes,
                           interpolation="nearest")
    axes[2, column].imshow(predicted[column], cmap="tab20", vmin=0, vmax=num_classes,
                           interpolation="nearest")
for row, title in enumerate(["image", "true label per patch", "probe prediction"]):
    axes[row, 0].set_ylabel(title)
for axis in axes.ravel():
    axis.set_xticks([])
    axis.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# `keras_siglip2.evaluation.dense_probe.dense_probe_miou(train_features,
# train_masks, test_features, test_masks, num_classes)` does the above in one
# call (the demo's `dense_probe_miou` metric). For your own data, pass any
# per-image `(h, w, D)` features and integer label maps of any size.
