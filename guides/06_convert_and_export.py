# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   colab_install:
#     extras: [export]
#     packages: [transformers, torch]
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Converting checkpoints and exporting for serving
#
# SigLIP 2 weights exist in three ecosystems: Hugging Face `transformers`
# (safetensors), Google's `big_vision` (`.npz`) and `keras-hub` (Kaggle
# presets). `SigLIP2.from_preset` reads all three directly, and
# `ks.presets.convert` (or `siglip2 convert`) turns any of them into one
# self-contained preset folder. `model.export` then writes a TensorFlow
# SavedModel (preprocessing included) and ONNX graphs for serving without
# this package.
#
# **Modes.** Online (`SIGLIP2_GUIDE_MODE=full`): the real
# `google/siglip2-base-patch16-naflex` from the Hugging Face Hub. Offline and
# in the tests (*small mode*): small random checkpoints written on the spot by
# `transformers`, `keras-hub` and in big_vision's layout; every step below is
# the same for real checkpoints.
#
# Export is traced with TensorFlow whatever the backend (on JAX or PyTorch,
# `export` runs a TensorFlow child process by itself); this guide simply runs
# on TensorFlow.

# %%
import json
import os
import shutil

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np

import keras_siglip2 as ks
from keras_siglip2.presets.hubs import probe

MODE = os.environ.get("SIGLIP2_GUIDE_MODE") or (
    "full" if probe("https://huggingface.co", timeout=3) is None else "small"
)
print(f"mode: {MODE}, backend: {keras.backend.backend()}")

# %% [markdown]
# ## 1. Hugging Face `transformers`
#
# A Hugging Face checkpoint is a folder with `config.json`,
# `model.safetensors` (or shards) and `tokenizer.model`; `hf://org/name`
# downloads one into the Hugging Face cache. In small mode we create a small
# random `Siglip2Model` (NaFlex) with `save_pretrained`, and give it the demo
# SentencePiece vocabulary as its `tokenizer.model`.

# %%
if MODE == "full":
    HF_SOURCE = "hf://google/siglip2-base-patch16-naflex"
else:
    import torch
    from transformers import Siglip2Config, Siglip2Model

    torch.manual_seed(0)
    trunk = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2)
    hf_config = Siglip2Config(
        text_config=dict(trunk, vocab_size=1000, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=1, bos_token_id=2),
        vision_config=dict(trunk, patch_size=16, num_patches=16),
    )
    hf_model = Siglip2Model(hf_config).eval()
    HF_SOURCE = "hf_checkpoint"
    hf_model.save_pretrained(HF_SOURCE)
    shutil.copy(ks.data.demo_vocabulary_path(), os.path.join(HF_SOURCE, "tokenizer.model"))
    print(sorted(os.listdir(HF_SOURCE)))

model = ks.SigLIP2.from_preset(HF_SOURCE)
print(f"loaded {model.count_params():,} parameters; NaFlex: {model.backbone.naflex}")

# %% [markdown]
# The conversion is exact. Feeding the same preprocessed inputs to both
# libraries gives the same embeddings up to float32 rounding:

# %%
import skimage.data

image = skimage.data.chelsea()
inputs = model.image_inputs([image])
ours = model.embed_images([image])
if MODE == "small":
    import torch

    with torch.no_grad():
        theirs = hf_model.get_image_features(
            pixel_values=torch.from_numpy(inputs["patches"]),
            pixel_attention_mask=torch.from_numpy(inputs["patch_mask"].astype("int64")),
            spatial_shapes=torch.from_numpy(inputs["spatial_shapes"].astype("int64")),
        )
    theirs = getattr(theirs, "pooler_output", theirs).numpy()
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    print("largest difference to transformers:", float(np.abs(ours - theirs).max()))

# %% [markdown]
# `convert` writes our preset format: `config.json`, `model.weights.h5`, the
# tokenizer and the image settings, so later loads need neither the hub nor
# `transformers`. The command line equivalent is
# `siglip2 convert hf://google/siglip2-base-patch16-naflex ./b16_naflex`.

# %%
converted = ks.presets.convert(HF_SOURCE, "converted_preset", overwrite=True)
print(sorted(os.listdir(converted)))
again = ks.SigLIP2.from_preset(converted)
print("same embeddings after conversion:", np.array_equal(again.embed_images([image]), ours))

# %% [markdown]
# ## 2. big_vision `.npz`
#
# big_vision, Google's JAX codebase in which SigLIP 2 was trained, publishes
# flat `.npz` files of named arrays (`params/img/...`, `params/txt/...`,
# per-layer `encoderblock_0` or stacked `encoderblock`). `from_preset` infers
# the architecture from the array shapes. Loading never unpickles: the file
# is read with `allow_pickle=False`. big_vision checkpoints carry no
# tokenizer, so pair them with the Gemma SentencePiece model yourself
# (`SigLIP2Tokenizer(proto=...)`) or load only the backbone, as here.
#
# In small mode we write such a file from the model converted above, using
# the package's own name map (`big_vision_weight_map`).

# %%
if MODE == "full":
    print("Download a big_vision SigLIP 2 .npz (see big_vision's SigLIP 2 README) and pass its path.")
    NPZ = None
else:
    from keras_siglip2.presets.big_vision import big_vision_weight_map

    backbone = again.backbone
    vision, text = backbone.vision_encoder, backbone.text_encoder
    grid = vision.position_grid_size
    big_vision_shapes = {  # where big_vision's arrays have extra axes
        "params/t": (1,), "params/b": (1,),
        "params/img/pos_embedding": (grid, grid, vision.hidden_dim),
        "params/txt/pos_embedding": (1, text.sequence_length, text.hidden_dim),
    }
    arrays = {}
    for variable, name, _ in big_vision_weight_map(backbone):
        value = keras.ops.convert_to_numpy(variable)
        arrays[name] = value.reshape(big_vision_shapes.get(name, value.shape))
    NPZ = "siglip2_tiny_big_vision.npz"
    np.savez(NPZ, **arrays)
    print(f"{len(arrays)} arrays, e.g.", sorted(arrays)[:3])

if NPZ:
    from_npz = ks.SigLIP2Backbone.from_preset(NPZ)
    print("config inferred from the shapes:", {k: from_npz.vision_encoder.get_config()[k]
          for k in ("patch_size", "hidden_dim", "num_layers", "image_size")})
    same = all(np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
               for a, b in zip(from_npz.weights, backbone.weights))
    print("identical weights:", same)

# %% [markdown]
# ## 3. keras-hub
#
# keras-hub ships the fixed-resolution SigLIP 2 checkpoints as Kaggle presets
# (`kaggle://keras/siglip/keras/siglip2_base_patch16_224`; the short alias
# `"b16"` resolves to it). A local keras-hub preset folder loads the same way.
# Here: a small random keras-hub `SigLIPBackbone` saved with its own
# `save_to_preset`.

# %%
if MODE == "full":
    KERAS_HUB_SOURCE = "kaggle://keras/siglip/keras/siglip2_base_patch16_224"
else:
    import keras_hub

    keras.utils.set_random_seed(0)
    widths = dict(hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128)
    keras_hub_backbone = keras_hub.models.SigLIPBackbone(
        keras_hub.models.SigLIPVisionEncoder(patch_size=16, image_shape=(64, 64, 3), **widths),
        keras_hub.models.SigLIPTextEncoder(vocabulary_size=1000, embedding_dim=64,
                                           max_sequence_length=64, **widths),
    )
    KERAS_HUB_SOURCE = "keras_hub_preset"
    keras_hub_backbone.save_to_preset(KERAS_HUB_SOURCE)

from_keras_hub = ks.SigLIP2Backbone.from_preset(KERAS_HUB_SOURCE)
print("image size", from_keras_hub.vision_encoder.image_size,
      "| parameters", f"{from_keras_hub.count_params():,}")
if MODE == "small":
    rng = np.random.default_rng(0)
    batch = {"images": rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32"),
             "token_ids": rng.integers(2, 1000, (2, 64)).astype("int32")}
    theirs = keras_hub_backbone.predict_on_batch(batch)
    ours = from_keras_hub.predict_on_batch(batch)
    difference = np.abs(np.asarray(ours["logits"]) - np.asarray(theirs["vision_logits"])).max()
    print("largest logit difference to keras-hub:", float(difference))

# %% [markdown]
# ## 4. Export: TensorFlow SavedModel and ONNX
#
# `model.export(path, format=...)` writes
#
# - `tf_saved_model`: signatures `embed_images` (uint8 pixels
#   `(B, H, W, 3)` in, normalised embeddings out) and `embed_texts` (strings
#   in) with the preprocessing inside, plus the bare `image_encoder` /
#   `text_encoder` and the `log_temperature` / `bias` scalars;
# - `onnx`: `image_encoder.onnx` and `text_encoder.onnx` (bare towers; the
#   batch and, for NaFlex, the patch count are dynamic), the SentencePiece
#   model, and `siglip2_export.json` describing the preprocessing to apply.
#
# Export is checked against the Keras model to 1e-4 by the package's tests.
# It needs `pip install 'keras-siglip2[export]'` (tf2onnx, onnx, onnxruntime).

# %%
exported = again.export("exported", format=["tf_saved_model", "onnx"], verbose=False)
for folder, _, files in sorted(os.walk("exported")):
    print(folder, sorted(files))

# %% [markdown]
# ### Serving the SavedModel (TensorFlow only)
#
# The tokenizer op comes from `tensorflow_text`, which must be imported
# before loading.

# %%
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece op)

served = tf.saved_model.load("exported/tf_saved_model")
texts = ["a cat", "a dog"]
image_embedding = served.embed_images(tf.constant(image[None]))["image_embeddings"].numpy()
text_embeddings = served.embed_texts(tf.constant(texts))["text_embeddings"].numpy()
print("SavedModel vs Keras, image:", float(np.abs(image_embedding - again.embed_images([image])).max()),
      "| texts:", float(np.abs(text_embeddings - again.embed_texts(texts)).max()))
logits = image_embedding @ text_embeddings.T * np.exp(served.log_temperature.numpy()) + served.bias.numpy()
print("sigmoid probabilities from the SavedModel alone:", (1 / (1 + np.exp(-logits))).round(4))

# %% [markdown]
# ### Serving with ONNX Runtime
#
# ONNX has no SentencePiece op and no resize identical to TensorFlow's
# antialiased one, so the ONNX graphs take preprocessed inputs, and
# `siglip2_export.json` says how to make them. Below, the text side follows
# that description with nothing but `sentencepiece`; the image side takes
# its inputs from `model.image_inputs` (re-implement the documented NaFlex
# resize in your serving stack).

# %%
import onnxruntime
import sentencepiece

folder = "exported/onnx"
manifest = json.load(open(os.path.join(folder, "siglip2_export.json")))
print(json.dumps(manifest["text_preprocessing"], indent=1))
print("image inputs:", manifest["image_encoder"]["inputs"])

text_side = manifest["text_preprocessing"]
pieces = sentencepiece.SentencePieceProcessor(model_file=os.path.join(folder, text_side["vocabulary"]))
length = text_side["sequence_length"]
token_ids = []
for ids in pieces.encode([t.lower() for t in texts]):
    ids = ids[: length - 1] + [text_side["eos_id"]]
    token_ids.append(ids + [text_side["pad_id"]] * (length - len(ids)))
text_session = onnxruntime.InferenceSession(os.path.join(folder, "text_encoder.onnx"))
(onnx_texts,) = text_session.run(["text_embeddings"], {"token_ids": np.array(token_ids, np.int32)})

image_session = onnxruntime.InferenceSession(os.path.join(folder, "image_encoder.onnx"))
onnx_image, _ = image_session.run(["image_embeddings", "patch_features"], again.image_inputs([image]))
print("ONNX vs Keras, image:", float(np.abs(onnx_image - again.embed_images([image])).max()),
      "| texts:", float(np.abs(onnx_texts - again.embed_texts(texts)).max()))
