"""The training workloads of `step_memory.py` and `gpu.py`: our model at real
widths, synthetic batches (NumPy only: the GPU machine has no TensorFlow), and
the compiled JAX training step (Keras' own `train_step`, jit-compiled, with the
model state donated as `fit` does).

Synthetic LocCa targets are laid out as `preprocessing/locca_sequences.py`
lays real ones out, with captions of `CAPTION_TOKENS` tokens and region texts
of `REGION_TOKENS` tokens (uniform ranges): 15% of the 3 × 64 decoder target
positions are scored on average, the rest is padding.
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CAPTION_TOKENS = (8, 24)  # caption length range (tokens before EOS)
REGION_TOKENS = (3, 10)  # region text length range
COORDINATE_BINS = 1000
BOS, EOS = 2, 1

# (image variant, patch, image size); None = NaFlex.
SIZES = {
    "b16": ("B", 16, 224),
    "so400m": ("So400m", 14, 224),
    "so400m-384": ("So400m", 14, 384),
    "b16-naflex": ("B", 16, None),
}
RECIPES = ("sigmoid", "locca", "full")


def backbone_config(size, depth=None, vocabulary=None, patches=256, toy=False):
    """Backbone config of a released size (`SIZES`), optionally with fewer
    layers, a smaller text vocabulary, or at toy widths (`toy=True`: width 32,
    for `--smoke` runs)."""
    from keras_siglip2 import configs

    variant, patch, image_size = SIZES[size]
    config = configs.model_config(variant, patch, image_size)
    if image_size is None:
        config["vision"]["max_num_patches"] = patches
    for tower in config.values():
        if toy:
            tower.update(hidden_dim=32, intermediate_dim=64, num_heads=2)
        if depth:
            tower["num_layers"] = depth
    if toy:
        config["text"]["projection_dim"] = 32
    if vocabulary:
        config["text"]["vocabulary_size"] = vocabulary
    return config


def recipe_settings(config, recipe, toy=False):
    """`(locca, self_supervised settings or None)` of a recipe ("sigmoid",
    "locca" or "full"); paper-size self-supervised heads, tiny at toy size."""
    from keras_siglip2.models.self_supervised import self_supervised_settings

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}; got {recipe!r}.")
    settings = None
    if recipe == "full":
        overrides = True
        if toy:
            overrides = dict(num_prototypes=64, num_patch_prototypes=32, head_hidden_dim=32,
                             head_bottleneck_dim=16)
        settings = self_supervised_settings(overrides, config["vision"]["patch_size"])
    return recipe != "sigmoid", settings


def build_model(config, recipe, remat=None, toy=False, chunk_size=256, seed=0):
    """A compiled `SigLIP2` for `recipe`, all five losses switched on from the
    first step."""
    import keras

    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.models.siglip2 import SigLIP2

    locca, self_supervised = recipe_settings(config, recipe, toy)
    keras.utils.set_random_seed(seed)
    model = SigLIP2(
        SigLIP2Backbone.from_config(config),
        locca=locca,
        num_coordinate_bins=COORDINATE_BINS,
        self_supervised=self_supervised,
        remat=remat,
    )
    model.compile(self_supervised_start=0, chunk_size=chunk_size)
    return model


def _num_patches(vision):
    if vision.get("image_size") is None:
        return vision["max_num_patches"]
    return (vision["image_size"] // vision["patch_size"]) ** 2


def batch_shapes(config, batch_size, locca=False, self_supervised=None):
    """`{input name: (shape, dtype)}` of a training batch (`recipe_settings`
    gives `locca` and `self_supervised`)."""
    vision = config["vision"]
    length = config["text"]["sequence_length"]
    patches = _num_patches(vision)
    if vision.get("image_size") is None:
        shapes = {
            "patches": ((batch_size, patches, vision["patch_size"] ** 2 * 3), "float32"),
            "patch_mask": ((batch_size, patches), "bool"),
            "spatial_shapes": ((batch_size, 2), "int32"),
        }
    else:
        size = vision["image_size"]
        shapes = {"images": ((batch_size, size, size, 3), "float32")}
    shapes["token_ids"] = ((batch_size, length), "int32")
    if locca:
        for task in ("captioning", "referring", "grounded"):
            shapes[f"{task}_inputs"] = ((batch_size, length), "int32")
            shapes[f"{task}_targets"] = ((batch_size, length), "int32")
            shapes[f"{task}_weights"] = ((batch_size, length), "float32")
        shapes["captioning_parallel"] = ((batch_size,), "bool")
    if self_supervised is not None:
        crop = self_supervised["local_view_size"]
        views = self_supervised["num_local_views"]
        shapes["local_images"] = ((batch_size, views, crop, crop, 3), "float32")
        shapes["patch_drop_mask"] = ((batch_size, patches), "bool")
    return shapes


def _naflex_grids(batch_size, patches):
    """Half the images fill the `side × side` grid, half use `side/2 × side`."""
    side = int(patches**0.5)
    return np.array(
        [(side if i % 2 == 0 else max(1, side // 2), side) for i in range(batch_size)], "int32"
    )


def _sequence(tokens, first_scored, length):
    """Full sequence → padded (inputs, targets, weights), as the pipeline does."""
    inputs, targets = tokens[:-1], tokens[1:]
    weights = (np.arange(len(targets)) >= first_scored).astype("float32")
    pad = lambda x: np.pad(x, (0, length - len(x)))  # noqa: E731
    return pad(inputs), pad(targets), pad(weights)


def synthetic_batch(config, batch_size, locca=False, self_supervised=None, seed=0):
    """A training batch of random images and token ids (NumPy) with realistic
    padding (see the module docstring); `batch_shapes` gives its layout."""
    rng = np.random.default_rng(seed)
    shapes = batch_shapes(config, batch_size, locca, self_supervised)
    batch = {
        name: rng.uniform(-1, 1, shape).astype("float32")
        for name, (shape, dtype) in shapes.items()
        if dtype == "float32" and not name.endswith("_weights")
    }
    length, vocabulary = config["text"]["sequence_length"], config["text"]["vocabulary_size"]
    words = lambda n: rng.integers(3, vocabulary, n)  # noqa: E731
    captions = [words(rng.integers(*CAPTION_TOKENS, endpoint=True))[: length - 1]
                for _ in range(batch_size)]
    batch["token_ids"] = np.stack(
        [np.pad(np.append(c, EOS), (0, length - len(c) - 1)) for c in captions]
    ).astype("int32")
    patches = _num_patches(config["vision"])
    real = np.ones((batch_size, patches), bool)
    if "patches" in shapes:
        grids = _naflex_grids(batch_size, patches)
        real = np.arange(patches)[None] < (grids[:, 0] * grids[:, 1])[:, None]
        batch.update(spatial_shapes=grids, patch_mask=real)
        batch["patches"] *= real[..., None]
    if locca:
        sequences = {"captioning": [], "referring": [], "grounded": []}
        for caption in captions:
            region = words(rng.integers(*REGION_TOKENS, endpoint=True))
            box = vocabulary + np.sort(rng.integers(0, COORDINATE_BINS, 4))
            sequences["captioning"].append(_sequence(np.r_[BOS, caption, EOS], 0, length))
            sequences["referring"].append(
                _sequence(np.r_[BOS, region, EOS, box, EOS], len(region) + 1, length))
            sequences["grounded"].append(_sequence(np.r_[BOS, box, region, EOS], 4, length))
        for task, rows in sequences.items():
            for part, values in zip(("inputs", "targets", "weights"), zip(*rows)):
                dtype = "float32" if part == "weights" else "int32"
                batch[f"{task}_{part}"] = np.stack(values).astype(dtype)
        batch["captioning_parallel"] = rng.random(batch_size) < 0.5
    if self_supervised is not None:
        drop = np.zeros_like(real)
        for row, mask in zip(drop, real):
            valid = np.flatnonzero(mask)
            row[rng.choice(valid, len(valid) // 2, replace=False)] = True
        batch["patch_drop_mask"] = drop
    return batch


def model_batch_shapes(model, batch_size):
    """`batch_shapes` of a built `SigLIP2`."""
    config = {"vision": model.backbone.vision, "text": model.backbone.text}
    return batch_shapes(config, batch_size, model.decoder is not None, model.self_supervised)


def scored_tokens(batch):
    """Decoder target tokens with a weight in `batch`, over the three tasks."""
    return int(sum((batch[f"{t}_weights"] > 0).sum() for t in ("captioning", "referring", "grounded")))


def _state(model):
    """The model's state in the order of Keras' JAX `train_step(state, data)`."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )


def jax_train_step(model):
    """`(step, state)`: Keras' JAX training step jit-compiled with the state
    donated, and the initial state; `logs, state = step(state, (batch,))`."""
    import jax

    model.optimizer.build(model.trainable_variables)
    return jax.jit(model.train_step, donate_argnums=0), _state(model)


def compile_train_step(model, batch_size):
    """The compiled (never run) JAX training step at `batch_size`, from
    abstract shapes: its `memory_analysis()` and `cost_analysis()` need no
    device memory for activations."""
    import jax

    model.optimizer.build(model.trainable_variables)
    state = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _state(model)
    )
    data = {
        name: jax.ShapeDtypeStruct(shape, dtype)
        for name, (shape, dtype) in model_batch_shapes(model, batch_size).items()
    }
    return jax.jit(model.train_step, donate_argnums=0).lower(state, (data,)).compile()


def _loss_function(model):
    """`loss(trainable_values, batch)`: the loss Keras' JAX step differentiates
    (no loss scaling: the optimiser's variables are not needed)."""
    non_trainable = [v.value for v in model.non_trainable_variables]
    metrics = [v.value for v in model.metrics_variables]

    def loss(trainable, batch):
        return model.compute_loss_and_updates(
            trainable, non_trainable, metrics, batch, None, None, training=True,
            optimizer_variables=[],
        )[0]

    return loss


def residuals(model, batch_size):
    """What autodiff keeps from the forward pass for the backward pass of the
    training step (traced at `batch_size`, nothing compiled or run):
    `{component: bytes}` by the layer that made each residual — "vision",
    "text", "decoder", "self-supervised" (kept by the switch-on `cond`) or
    "loss" (everything else) — plus "total". Arguments (the weights
    themselves) are not counted: they are in memory anyway.

    This is the activation memory a compiler must hold between the forward
    and the backward pass; XLA on GPU holds it (rematerialisation included),
    while XLA on CPU undoes `jax.checkpoint` (it folds the recomputation back
    into the forward pass), so the CPU's compiled `memory_analysis()` cannot
    show what remat saves."""
    import math

    import jax
    from jax.extend.core import Literal

    loss = _loss_function(model)
    trainable = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in model.trainable_variables]
    batch = {
        name: jax.ShapeDtypeStruct(shape, dtype)
        for name, (shape, dtype) in model_batch_shapes(model, batch_size).items()
    }
    closed, shapes = jax.make_jaxpr(
        lambda values, data: jax.vjp(lambda v: loss(v, data), values), return_shape=True
    )(trainable, batch)
    jaxpr = closed.jaxpr
    count = len(jax.tree_util.tree_leaves(shapes[1]))
    producers = {var: eqn for eqn in jaxpr.eqns for var in eqn.outvars}
    inputs = set(jaxpr.invars)
    totals = {"vision": 0, "text": 0, "decoder": 0, "self-supervised": 0, "loss": 0}
    for var in jaxpr.outvars[len(jaxpr.outvars) - count:]:
        if isinstance(var, Literal) or var in inputs or var not in producers:
            continue  # a literal, or an argument
        size = math.prod(var.aval.shape) * var.aval.dtype.itemsize
        eqn = producers[var]
        scope = str(eqn.source_info.name_stack)
        if eqn.primitive.name == "cond":
            totals["self-supervised"] += size
        elif "vision_encoder" in scope:
            totals["vision"] += size
        elif "text_encoder" in scope:
            totals["text"] += size
        elif "locca_decoder" in scope:
            totals["decoder"] += size
        else:
            totals["loss"] += size
    totals["total"] = sum(totals.values())
    return totals


def state_bytes(model):
    """Bytes of the step's state by arithmetic (nothing is allocated): the
    weights, Adam's two moments and one gradient per trainable weight (all in
    the weights' dtype, float32 under `mixed_bfloat16`), and the metrics."""
    import math

    size = lambda v: math.prod(v.shape) * v.value.dtype.itemsize  # noqa: E731
    trainable = sum(size(v) for v in model.trainable_variables)
    other = sum(size(v) for v in [*model.non_trainable_variables, *model.metrics_variables])
    return 4 * trainable + other
