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
# # Quick start: zero-shot classification, embeddings, retrieval, 100+ languages
#
# SigLIP 2 maps images and texts into one embedding space. Two embeddings are
# compared by cosine similarity; a learned temperature and bias turn that
# similarity into a **sigmoid probability** that the text describes the image.
# Each image–text pair gets its own probability (there is no softmax over the
# labels), so probabilities need not sum to one.
#
# This guide loads a released checkpoint, classifies images with labels chosen
# at run time (zero-shot), embeds images and texts, retrieves images for a
# query, and asks the same question in several languages.
#
# **Two modes.** With internet access the guide downloads a real checkpoint
# (`b16`, SigLIP 2 B/16 at 224 px, ≈ 1.5 GB) and uses photos bundled with
# scikit-image. Offline (and in this package's test suite) it runs in *small
# mode*: the demo model of `siglip2 demo` on the demo dataset of coloured
# shapes. Set `SIGLIP2_GUIDE_MODE=small` or `full` to choose. The outputs saved
# in this notebook say which mode produced them.

# %%
import os

# Pick the Keras backend before Keras is imported: "jax", "tensorflow" or "torch".
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_siglip2 as ks
from keras_siglip2.presets.hubs import probe


def choose_mode():
    """`SIGLIP2_GUIDE_MODE` if set, else "full" when Hugging Face answers."""
    mode = os.environ.get("SIGLIP2_GUIDE_MODE")
    if mode:
        return mode
    return "full" if probe("https://huggingface.co", timeout=3) is None else "small"


MODE = choose_mode()
print(f"mode: {MODE}, Keras {keras.__version__}, backend {keras.backend.backend()}")

# %% [markdown]
# ## Load a model
#
# `SigLIP2.from_preset` takes a short alias (`"b16"`, `"so400m"`,
# `"b16-naflex"`; `ks.list_presets(verbose=True)` prints them all), a hub
# handle (`"hf://google/siglip2-base-patch16-224"`,
# `"kaggle://keras/siglip/keras/siglip2_base_patch16_224"`) or a local folder.
# The preprocessing (tokenizer, image resizing) comes with it.
#
# In small mode the guide uses the demo model: the one `siglip2 demo` (or
# `python3 dev.py demo`) trains and saves in `siglip2_demo/preset`, if you ran
# it; otherwise the same architecture with random weights, saved as a preset
# first. Random weights run every cell, but the numbers mean nothing.


# %%
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


PRESET = "b16" if MODE == "full" else demo_preset()
model = ks.SigLIP2.from_preset(PRESET)
print(f"{model.count_params():,} parameters; NaFlex: {model.backbone.naflex}")

# %% [markdown]
# ## Images and labels
#
# Any image works: a file path, a URL-free `PIL.Image`, a NumPy array
# `(H, W, 3)` of uint8 pixels, a list of them, or a `tf.data.Dataset`.

# %%
if MODE == "full":
    import skimage.data

    images = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket(),
              skimage.data.astronaut()]
    labels = ["a cat", "a cup of coffee", "a rocket launch", "an astronaut", "a dog", "a car"]
else:
    examples = ks.data.make_demo_examples(6, split="test")
    images = [e["image"] for e in examples]
    labels = ks.data.demo_class_names()  # 36 classes: "red circle", "blue square", ...

figure, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4))
for axis, image in zip(axes, images):
    axis.imshow(image)
    axis.set_title(f"{image.shape[1]}×{image.shape[0]}", fontsize=8)
    axis.axis("off")
plt.show()

# %% [markdown]
# ## Zero-shot classification
#
# `zero_shot(images, labels)` returns an `(images, labels)` array of sigmoid
# probabilities. `templates="imagenet"` averages each label over the 80 CLIP
# prompt templates ("a photo of a {}.", …), which usually helps on photos.

# %%
probabilities, best = model.zero_shot(images, labels, return_argmax=True)
print("probabilities:", probabilities.shape)
for i, row in enumerate(probabilities):
    top = np.argsort(-row)[:3]
    ranked = ", ".join(f"{labels[j]} {row[j]:.3f}" for j in top)
    print(f"image {i}: {ranked}")
if MODE == "small":
    truth = [labels[e["label"]] for e in examples]
    print("true main objects:", truth)

# %% [markdown]
# ## Embeddings and similarity
#
# `embed_images` and `embed_texts` return L2-normalised float32 NumPy arrays,
# so a dot product is the cosine similarity. `similarity(images, texts,
# kind=...)` gives the cosine, the logit (`cos · exp(t') + b`) or the
# probability directly.

# %%
image_embeddings = model.embed_images(images)
text_embeddings = model.embed_texts(labels)
print("image embeddings", image_embeddings.shape, "text embeddings", text_embeddings.shape)
print("norms:", np.linalg.norm(image_embeddings, axis=1).round(4))
cosine = image_embeddings @ text_embeddings.T
print("same as similarity():", np.allclose(cosine, model.similarity(images, labels), atol=1e-5))
log_temperature, bias = model.logit_parameters()
print(f"temperature exp(t') = {np.exp(log_temperature):.2f}, bias b = {bias:.2f}")

# %% [markdown]
# ## Retrieval
#
# `retrieve(queries, corpus, k)` embeds both sides (texts or images, in any
# combination) and returns the indices and cosine scores of the `k` nearest
# corpus items per query. For a large corpus, embed it once with
# `embed_images` and keep the array; the search itself is a matrix product.

# %%
if MODE == "full":
    queries = ["a kitten", "something to drink", "space travel"]
else:
    queries = [ks.data.demo_class_names()[examples[i]["label"]] for i in (0, 1, 2)]
indices, scores = model.retrieve(queries, images, k=2)
figure, axes = plt.subplots(len(queries), 2, figsize=(4.5, 2.2 * len(queries)))
for row, query in enumerate(queries):
    for column in range(2):
        axis = axes[row, column]
        axis.imshow(images[indices[row, column]])
        axis.set_title(f"{query!r} #{column + 1}: {scores[row, column]:.3f}", fontsize=8)
        axis.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Multilingual queries
#
# The released checkpoints use the 256k-token Gemma tokenizer and were trained
# on text in more than 100 languages; the demo model knows the five languages
# of its captions (English, German, French, Russian, Japanese). The same
# concept asked in different languages should land near the same images.

# %%
if MODE == "full":
    multilingual = {
        "English": "a cat", "German": "eine Katze", "French": "un chat",
        "Japanese": "猫", "Russian": "кошка", "Hindi": "एक बिल्ली",
    }
else:
    label = examples[0]["label"]
    multilingual = {
        name: ks.data.demo_class_names(language)[label]
        for name, language in [("English", "en"), ("German", "de"), ("French", "fr"),
                               ("Russian", "ru"), ("Japanese", "ja")]
    }
texts = list(multilingual.values())
probability = model.similarity(images, texts, kind="probability")
for (language, text), column in zip(multilingual.items(), probability.T):
    print(f"{language:9s} {text!r:28s} best image: {column.argmax()}  p = {column.max():.3f}")
same = model.embed_texts(texts)
print("cosine between the translations:\n", (same @ same.T).round(2))

# %% [markdown]
# ## Next
#
# - [02_naflex](02_naflex.ipynb): native aspect ratio and the sequence-length trade-off.
# - [03_dense_features](03_dense_features.ipynb): patch heat maps and a segmentation probe.
# - [04_fine_tuning](04_fine_tuning.ipynb): train on your own image–text pairs with `model.fit`.
# - The command line does the same without code: `siglip2 zero-shot cat.jpg --labels "a cat,a dog"`.
