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
# # Distributed training: data and model parallel, the ring sigmoid loss
#
# On a machine with several accelerators, the same `model.fit` trains on all
# of them through `keras.distribution` (JAX). This guide
#
# 1. trains with **data parallelism** (weights replicated, batch split);
# 2. trains with **model parallelism + FSDP** (weights split over a
#    `batch × model` device mesh) and checks that both follow the same loss
#    curve as one device;
# 3. shows why the sigmoid loss uses a **ring** over devices: the same value,
#    a fraction of the memory;
# 4. gives the **memory per device** of weights, gradients and optimizer
#    state for the released models.
#
# **Modes.** With several GPUs/TPUs (and internet, `SIGLIP2_GUIDE_MODE=full`)
# it uses them. Otherwise — on a laptop, in Colab with one GPU, and in the
# tests (*small mode*) — JAX is asked for **8 simulated CPU devices**, which
# behave like 8 accelerators for sharding purposes (just not faster), and a
# tiny model. Everything about layouts and the loss carries over unchanged.

# %% [markdown]
# ## Devices
#
# Two settings must come **before JAX is imported** (restart the kernel if it
# already is): the backend, and — for simulated devices — the number of CPU
# devices XLA creates.

# %%
import os

os.environ["KERAS_BACKEND"] = "jax"  # keras.distribution is JAX-only
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)

import jax
import keras
import numpy as np
import tensorflow as tf

import keras_siglip2 as ks

MODE = os.environ.get("SIGLIP2_GUIDE_MODE", "small")
accelerators = [d for d in jax.devices() if d.platform != "cpu"]
if MODE == "full" and len(accelerators) >= 2:
    DEVICES = accelerators
else:
    MODE = "small"
    DEVICES = jax.devices("cpu")  # 8 simulated devices
print(f"mode: {MODE}; {len(DEVICES)} devices: {DEVICES[0].device_kind} ×{len(DEVICES)}")

# %% [markdown]
# ## A model and a few batches
#
# Small mode: the tiny architecture (width 32, two layers per tower) with the
# demo vocabulary, trained on the demo dataset. Full mode: `b16` with its
# released weights and the LocCa decoder. The **batch size is global**: with
# 8 devices and batch 32 each device holds 4 examples, and the sigmoid loss
# still scores every image against all 31 other captions.

# %%
from keras_siglip2.preprocessing import SigLIP2ImageConverter, SigLIP2Preprocessor, SigLIP2Tokenizer

BATCH, STEPS = (32, 3) if MODE == "small" else (256, 20)


def build_model(seed=0):
    """A fresh model; under a distribution, its variables are created sharded."""
    keras.utils.set_random_seed(seed)
    if MODE == "full":
        return ks.SigLIP2.from_preset("b16", locca=True)
    tokenizer = SigLIP2Tokenizer(proto=str(ks.data.demo_vocabulary_path()), sequence_length=16)
    config = ks.configs.tiny(vocabulary_size=tokenizer.vocabulary_size(), image_size=32)
    preprocessor = SigLIP2Preprocessor(tokenizer, SigLIP2ImageConverter(32))
    return ks.SigLIP2(ks.SigLIP2Backbone.from_config(config), preprocessor, locca=False)


reference_model = build_model()
initial_weights = reference_model.get_weights()
raw = ks.data.demo_dataset(BATCH * STEPS, split="train")
stream = ks.data.training_batches(raw, reference_model, BATCH, shuffle_buffer=0)
# The same batches for every run below, so that the loss curves are comparable.
batches = [{k: np.asarray(v) for k, v in b.items()} for b in stream.take(STEPS)]
data = tf.data.Dataset.from_tensor_slices({k: np.stack([b[k] for b in batches]) for k in batches[0]})
print(f"{reference_model.count_params():,} parameters; batch {BATCH} = {BATCH // len(DEVICES)} per device")


def train(model):
    """`STEPS` steps of fit; returns the loss after each step."""
    model.compile(learning_rate=3e-3, total_steps=10)
    history = model.fit(data, epochs=STEPS, steps_per_epoch=1, verbose=0, shuffle=False)
    return np.array(history.history["loss"])


# %% [markdown]
# One device first, as the reference curve.

# %%
keras.distribution.set_distribution(None)
reference_losses = train(reference_model)
print("one device:     ", reference_losses.round(5))

# %% [markdown]
# ## 1. Data parallel
#
# `ks.distribution.data_parallel()` replicates every weight on every device
# and splits each batch over them. Set it with
# `keras.distribution.set_distribution(...)` (or use it as a context with
# `dist.scope()`) **before building the model**.

# %%
dist = ks.distribution.data_parallel(DEVICES)
with dist.scope():
    model = build_model()
    model.set_weights(initial_weights)
    losses = train(model)
print("data parallel:  ", losses.round(5),
      "| same as one device:", np.allclose(losses, reference_losses, atol=1e-4))
with dist.scope():
    print("sigmoid loss chosen by compile(sigmoid_loss='auto'):",
          ks.losses.resolve_sigmoid_loss("auto", BATCH))
kernel = model.backbone.text_encoder.encoder_blocks[0].mlp.fc1.kernel
print("an MLP kernel:", kernel.shape, "sharding", kernel.value.sharding.spec)

# %% [markdown]
# ## 2. Model parallel and FSDP
#
# `ks.distribution.model_parallel(model_parallel_size=2)` arranges the 8
# devices as a `4 × 2` mesh with axes `("batch", "model")`.
# `SigLIP2Backbone.get_layout_map` decides where each weight lives:
# attention heads, MLP units and vocabulary rows are split over `"model"`
# (tensor parallelism), and the other large axis over `"batch"` (FSDP: stored
# once across the mesh, gathered when used). `fully_sharded()` is the same
# on an `8 × 1` mesh. Weights, gradients and Adam's moments all follow the
# layout, which is what cuts memory per device.

# %%
for name, dist in [("model parallel", ks.distribution.model_parallel(2, DEVICES)),
                   ("fully sharded", ks.distribution.fully_sharded(DEVICES))]:
    with dist.scope():
        model = build_model()
        model.set_weights(initial_weights)
        losses = train(model)
    print(f"{name + ':':16s}", losses.round(5), "| mesh", dict(zip(dist.device_mesh.axis_names,
          dist.device_mesh.shape)), "| same as one device:",
          np.allclose(losses, reference_losses, atol=1e-4))
    for variable in model.backbone.weights:
        if any(key in variable.path for key in ("token_embedding", "encoder_block_0/mlp")):
            print(f"    {variable.path:55s} {str(tuple(variable.shape)):12s}"
                  f" {tuple(variable.value.sharding.spec)}")

# %% [markdown]
# The spec says which mesh axis splits each dimension of a weight (`None`:
# not split). Check any layout with
# `{v.path: v.value.sharding.spec for v in model.weights}`.
#
# ## 3. The ring sigmoid loss
#
# The sigmoid loss compares each of the `B` images with each of the `B`
# texts. Computed naively under data parallelism, every device holds a
# `b × B` block of logits (`b = B / devices`) plus its gradient, which grows
# with the number of devices. The paper's **ring** form keeps `b × b`: each
# device scores its own images against its own texts, then passes its texts to
# the next device round a ring, `devices − 1` times, adding negatives-only
# blocks. `compile(sigmoid_loss="auto")` (the default) picks the ring under
# a multi-device JAX distribution; `"dense"`, `"chunked"` and `"ring"` force
# one. All give the same value and gradients:

# %%
rng = np.random.default_rng(0)
b, width = 256, 64
B = b * len(DEVICES)


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


images, texts = unit(rng.normal(size=(B, width))), unit(rng.normal(size=(B, width)))
log_temperature, bias = np.float32(np.log(10.0)), np.float32(-10.0)
dist = ks.distribution.data_parallel(DEVICES)


def compiled_loss(kind):
    """The loss and its gradient, jitted with the embeddings split over the devices."""
    def loss(i, t, lt, bb):
        return ks.losses.global_sigmoid_loss(i, t, lt, bb, kind=kind)

    with dist.scope():
        layout = dist.get_data_layout(images.shape)
        split = [keras.distribution.distribute_tensor(x, layout) for x in (images, texts)]
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        value, _ = step(*split, log_temperature, bias)
        memory = step.lower(*split, log_temperature, bias).compile().memory_analysis()
    return float(value), memory.temp_size_in_bytes / 2**20


for kind in ("dense", "ring"):
    value, mebibytes = compiled_loss(kind)
    print(f"{kind:6s} loss {value:.6f}   temporary memory per device {mebibytes:6.1f} MiB "
          f"(B = {B}, b = {b} per device)")

# %% [markdown]
# The ring's memory depends on `b` only; the dense form's grows with the
# number of devices. On real accelerators with `B` in the tens of thousands,
# that difference decides the batch you can train with.
#
# ## 4. Memory per device for the released models
#
# Weights, gradients and Adam's two moments are float32 (also under
# `mixed_bfloat16`): 16 bytes per parameter, divided by the number of shards.
# `ks.configs.checkpoint_parameters(name)` counts a released
# architecture with its LocCa decoder;
# `training_state_bytes_per_device(parameters, num_shards)` does the
# arithmetic. Activations come on top and scale with the per-device batch.

# %%
GiB = 2**30
rows = []
print(f"{'model':10s} {'training params':>16s} {'data_parallel':>14s} "
      f"{'model_parallel(2)':>18s} {'fully_sharded':>14s}   (8 devices, GiB each)")
for name in ("b16", "l16", "so400m", "g16"):
    parameters = ks.configs.checkpoint_parameters(name)
    replicated = ks.configs.training_state_bytes_per_device(parameters, num_shards=1) / GiB
    sharded = ks.configs.training_state_bytes_per_device(parameters, num_shards=8) / GiB
    print(f"{name:10s} {parameters:16,d} {replicated:14.1f} {sharded:18.1f} {sharded:14.1f}")

# %% [markdown]
# So400m/14 with its decoder needs 25.3 GiB per device for weights and
# optimizer state when replicated, 3.2 GiB when sharded over 8 devices
# (model-parallel 4 × 2 or FSDP 8 × 1 store each weight once either way; the
# layouts differ in communication, not in state size). See
# `docs/distributed.md` for measured activation memory.
#
# ## Other set-ups
#
# - **Many hosts**: call `keras.distribution.initialize()` first in every
#   process, then set the distribution as above; each host feeds its shard of
#   the data (Keras shards a `tf.data` pipeline automatically).
# - **TensorFlow**: build and compile under
#   `tf.distribute.MirroredStrategy().scope()`; each replica gathers the text
#   embeddings of all replicas, so the loss still sees the global batch. Pass
#   `compile(global_clipnorm=None)` for runs identical to one device (Keras
#   clips per replica).
# - **Mixed precision**: `keras.config.set_dtype_policy("mixed_bfloat16")`
#   before building the model halves activation memory; the state above does
#   not change.
