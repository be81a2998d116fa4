"""Clear errors for malformed model inputs, raised before any backend op runs.

Static shapes are checked always (also while tracing); values (token ids,
patch masks, spatial shapes) only when the input is concrete: in direct
calls, and in Keras' loops (`fit`, `evaluate`, `predict`, `*_on_batch`),
where `ChecksBatches` checks every batch before the compiled step sees it.
"""

import gc
import sys

import keras
import numpy as np
from keras.src.backend.common.symbolic_scope import in_symbolic_scope


def concrete_value(x):
    """`x` as a NumPy array when it holds concrete values, else None: traced,
    symbolic, a `tf.data` graph tensor, or the placeholder values Keras feeds
    while inferring output shapes (its symbolic scope, e.g. torch's ones)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor) or in_symbolic_scope():
        return None
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(x, tf.Tensor):  # on any backend, e.g. in `tf.data`
        return x.numpy() if hasattr(x, "numpy") and tf.executing_eagerly() else None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "torch":
        import torch

        if isinstance(x, torch.Tensor) and torch.compiler.is_compiling():
            return None
    return keras.ops.convert_to_numpy(x)


class ChecksBatches:
    """Mixin for Keras models: `fit`, `evaluate`, `predict` and the
    `*_on_batch` methods run `check_batch(inputs, training)` on the concrete
    inputs of every batch (arrays, dicts of arrays, `tf.data` datasets and
    generators), since the compiled step only sees traced values."""

    def fit(self, x=None, *args, **kwargs):
        return self._run_checked(super().fit, x, True, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        return self._run_checked(super().evaluate, x, True, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return self._run_checked(super().predict, x, False, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        return self._run_checked(super().train_on_batch, x, True, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        return self._run_checked(super().test_on_batch, x, True, *args, **kwargs)

    def predict_on_batch(self, x):
        return self._run_checked(super().predict_on_batch, x, False)

    def _run_checked(self, method, x, training, *args, **kwargs):
        from keras_siglip2.preprocessing.inputs import is_dataset

        failures = []

        def check(inputs):
            try:
                self.check_batch(inputs, training)
            except Exception as error:
                failures.append(error)
                raise

        snapshot = _jax_snapshot(self)
        try:
            return method(checked_batches(x, check), *args, **kwargs)
        except BaseException:
            if snapshot:
                _restore_purged(self, *snapshot)
            if failures:  # `tf.data` re-raises a failed check as its own error
                raise failures[0] from None
            raise
        finally:
            if is_dataset(x):
                # Keras leaves its epoch iterator in a reference cycle. Freed only
                # at interpreter exit, the iterator waits on in-flight checks
                # (`numpy_function`) that can no longer take the GIL, and the
                # process never ends: free it while the interpreter runs.
                gc.collect()


def _jax_snapshot(model):
    """On JAX, the model's, optimizer's and metrics' variables and their current
    values (references, no copies), for `_restore_purged`; else None."""
    if keras.backend.backend() != "jax":
        return None
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *getattr(optimizer, "variables", []), *model.metrics_variables]
    return variables, [variable.value for variable in variables]


def _restore_purged(model, variables, values):
    """Give back their values to variables that Keras' JAX loops detached
    (`_purge_model_variables`) and left detached because the loop failed:
    the last state the loop reached, else the values from before it (unless
    a compiled step consumed them)."""
    model.jax_state_sync()
    for variable, value in zip(variables, values):
        if variable._value is None and not value.is_deleted():
            variable.assign(value)


def checked_batches(data, check):
    """`data` for a Keras loop, with `check(inputs)` run on the inputs of every
    batch: now for arrays and dicts of them, as batches are read for
    `tf.data` datasets (their keys and static shapes also now) and generators;
    other sources pass unchecked."""
    from keras_siglip2.preprocessing.inputs import is_dataset

    def inputs_of(element):
        return keras.utils.unpack_x_y_sample_weight(element)[0]

    if is_dataset(data):
        import tensorflow as tf

        def check_element(*element):
            element = element[0] if len(element) == 1 else element
            inputs = inputs_of(element)
            check(inputs)  # keys and static shapes, now: TF's trainer traces before reading

            def run(*values):
                check(tf.nest.pack_sequence_as(inputs, list(values)))
                return np.bool_(True)

            done = tf.numpy_function(run, tf.nest.flatten(inputs), tf.bool)
            with tf.control_dependencies([done]):
                return tf.nest.map_structure(tf.identity, element)

        return data.map(check_element)
    if isinstance(data, dict) or keras.ops.is_tensor(data) or isinstance(data, np.ndarray):
        check(data)
        return data
    if hasattr(data, "__next__"):
        return (_checked_element(element, inputs_of, check) for element in data)
    return data


def _checked_element(element, inputs_of, check):
    check(inputs_of(element))
    return element


class ChecksInputs(ChecksBatches):
    """Mixin for functional models: `check_inputs(inputs)` runs before Keras'
    own input-spec checks (`__call__`), inside traced calls (`call`, which
    `predict`/`fit` reach through `stateless_call`) and on every batch of
    Keras' loops (`ChecksBatches`)."""

    def __call__(self, inputs, *args, **kwargs):
        self.check_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        self.check_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    def check_batch(self, inputs, training):
        """The loops' check (`ChecksBatches`): the same as a direct call's."""
        self.check_inputs(inputs)


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
    if not np.issubdtype(shapes.dtype, np.integer):
        raise ValueError(f"`spatial_shapes` must be integers; got dtype {shapes.dtype}.")
    if (shapes < 1).any():
        raise ValueError(f"`spatial_shapes` entries must be ≥ 1; got {shapes.tolist()}.")
    mask = mask.astype(bool)
    grid_sizes = shapes.astype(np.int64).prod(axis=-1)
    valid = mask.sum(axis=-1)
    prefix = mask == (np.arange(mask.shape[-1]) < valid[:, None])
    bad = np.nonzero((grid_sizes != valid) | ~prefix.all(axis=-1))[0]
    if bad.size:
        i = int(bad[0])
        how = "" if prefix[i].all() else ", not as a prefix"
        raise ValueError(
            f"Image {i}: spatial shape {tuple(shapes[i].tolist())} needs its first h·w = "
            f"{grid_sizes[i]} patches marked real in `patch_mask` (of {mask.shape[-1]}) and "
            f"the rest padding; the mask marks {valid[i]}{how}. Make NaFlex inputs with "
            "`NaFlexImageConverter`."
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
