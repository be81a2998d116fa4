"""Clear errors for malformed model inputs, raised before any backend op runs.

Static shapes are checked always (also while tracing); values (token ids,
spatial shapes) only when the input is concrete, i.e. in eager calls.
"""

import keras
import numpy as np


def concrete_value(x):
    """`x` as a NumPy array when it holds concrete values, else None (traced/symbolic)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor):
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
    elif backend == "torch":
        import torch

        if isinstance(x, torch.Tensor) and torch.compiler.is_compiling():
            return None
    return keras.ops.convert_to_numpy(x)


class ChecksInputs:
    """Mixin for functional models: `check_inputs(inputs)` runs before Keras'
    own input-spec checks (`__call__`) and inside traced calls (`call`, which
    `predict`/`fit` reach through `stateless_call`)."""

    def __call__(self, inputs, *args, **kwargs):
        self.check_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        self.check_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)


def _shape(x):
    return tuple(x.shape)


def require_rank(x, rank, name, expected):
    shape = _shape(x)
    if len(shape) != rank:
        raise ValueError(f"`{name}` must have shape {expected}; got shape {shape}.")
    return shape


def check_fixed_images(images, image_size):
    shape = require_rank(images, 4, "images", f"(batch, {image_size}, {image_size}, 3)")
    if shape[-1] is not None and shape[-1] != 3:
        raise ValueError(
            f"`images` must have 3 (RGB) channels, got {shape[-1]} in shape {shape}. "
            "Convert grayscale/RGBA images to RGB (the image converters do this)."
        )
    if None not in shape[1:3] and tuple(shape[1:3]) != (image_size, image_size):
        raise ValueError(
            f"This model takes {image_size}×{image_size} images; got "
            f"{shape[1]}×{shape[2]} (shape {shape}). Resize with "
            "`SigLIP2ImageConverter` or pick a preset for that resolution."
        )


def check_naflex_inputs(patches, patch_mask, spatial_shapes, patch_size):
    values = patch_size * patch_size * 3
    p_shape = require_rank(patches, 3, "patches", f"(batch, num_patches, {values})")
    if p_shape[-1] is not None and p_shape[-1] != values:
        raise ValueError(
            f"`patches` rows must hold patch_size²·3 = {values} values for patch size "
            f"{patch_size}; got {p_shape[-1]} (shape {p_shape}). Cut images with "
            "`NaFlexImageConverter` for this model."
        )
    m_shape = require_rank(patch_mask, 2, "patch_mask", "(batch, num_patches)")
    s_shape = require_rank(spatial_shapes, 2, "spatial_shapes", "(batch, 2)")
    if s_shape[-1] is not None and s_shape[-1] != 2:
        raise ValueError(f"`spatial_shapes` must be (batch, 2) rows of (h, w); got {s_shape}.")
    if None not in (p_shape[1], m_shape[1]) and p_shape[1] != m_shape[1]:
        raise ValueError(
            f"`patches` has {p_shape[1]} patches but `patch_mask` has {m_shape[1]}."
        )
    for name, shape in (("patch_mask", m_shape), ("spatial_shapes", s_shape)):
        if None not in (p_shape[0], shape[0]) and p_shape[0] != shape[0]:
            raise ValueError(
                f"`patches` has batch {p_shape[0]} but `{name}` has batch {shape[0]}."
            )
    shapes = concrete_value(spatial_shapes)
    mask = concrete_value(patch_mask)
    if shapes is None or mask is None:
        return
    grid_sizes = shapes.astype(np.int64).prod(axis=-1)
    valid = mask.astype(bool).sum(axis=-1)
    if (shapes < 1).any():
        raise ValueError(f"`spatial_shapes` entries must be ≥ 1; got {shapes.tolist()}.")
    bad = np.nonzero(grid_sizes > valid)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"Image {i}: spatial shape {tuple(shapes[i].tolist())} needs h·w = {grid_sizes[i]} "
            f"patches but only {valid[i]} are marked valid in `patch_mask`."
        )


def check_token_ids(token_ids, vocabulary_size, sequence_length):
    shape = require_rank(token_ids, 2, "token_ids", f"(batch, {sequence_length})")
    if shape[1] is not None and shape[1] != sequence_length:
        raise ValueError(
            f"`token_ids` must have exactly {sequence_length} positions (the pooled "
            f"position is the last one); got length {shape[1]}. Tokenise with "
            f"`SigLIP2Tokenizer`, which truncates and right-pads to {sequence_length}; "
            "padding to the longest text in the batch silently ruins accuracy."
        )
    ids = concrete_value(token_ids)
    if ids is None:
        return
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"`token_ids` must be integers; got dtype {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() >= vocabulary_size):
        raise ValueError(
            f"`token_ids` must lie in [0, {vocabulary_size}); got values in "
            f"[{ids.min()}, {ids.max()}]. Was the text tokenised with another vocabulary?"
        )
