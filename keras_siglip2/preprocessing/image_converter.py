"""Image converters: raw images → image-tower inputs (fixed resolution or NaFlex).

Both converters do their pixel work with TensorFlow ops (`tf.image.resize`),
eagerly and inside `tf.data`, so a `Dataset.map(converter)` gives the same
numbers as an eager call; eager outputs are backend tensors (keras-hub's
preprocessing convention), graph outputs `tf.Tensor`s.

Inputs. Eagerly: one image (NumPy array / tensor, `PIL.Image`, file path,
encoded bytes — see `keras_siglip2.preprocessing.image_io`) or a batch: a
list/tuple of such images (any sizes), a (B, H, W, C) array, or a 1-D
string tensor/array of encoded images. Inside
`tf.data`: a numeric tensor (H, W, C) or (B, H, W, C) with C in {1, 2, 3, 4}
(3 assumed when unknown) and any, also dynamic, H and W. `uint8` is taken as
is; other dtypes are read on the `value_range` scale (default: (0, 65535)
for `uint16`, else (0, 255)); values far outside it are refused, eagerly
with a `ValueError` and inside `tf.data` with an `InvalidArgumentError`.
A single image gives unbatched outputs (so `Dataset.map(converter).batch(B)`
works); a list or batch gives batched outputs. Input errors are raised as
they are, before Keras' layer call (which would wrap them in its own text).

Resizing. Fixed resolution: squash (no crop, aspect ratio not kept) to R×R,
bilinear with antialiasing by default. The references differ here:
big_vision's `resize` op (used by the released SigLIP 2 demo) is bilinear
*without* antialiasing; Hugging Face's `SiglipImageProcessor` and keras-hub's
SigLIP presets use bicubic with antialiasing (Pillow, which always
antialiases when shrinking). `interpolation` and `antialias` select any of
these. NaFlex: bilinear with antialiasing, as big_vision's
`resize_to_sequence` (`tf.image.resize(..., antialias=True)`) and
transformers' `Siglip2ImageProcessor` (Pillow bilinear) both do. Values go to
[-1, 1] by `x / 127.5 - 1` after the resize, in float32 (no rounding to
`uint8` in between, as in big_vision).
"""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras_hub.src.layers.preprocessing.preprocessing_layer import PreprocessingLayer
from keras_hub.src.utils.preset_utils import get_preset_loader
from keras_hub.src.utils.preset_utils import get_preset_saver
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs
from keras_hub.src.utils.tensor_utils import convert_to_numpy
from keras_hub.src.utils.tensor_utils import in_tf_function

from keras_siglip2.configs import NAFLEX_TRAINED_LENGTHS
from keras_siglip2.preprocessing.image_io import check_alpha
from keras_siglip2.preprocessing.image_io import RANGE_TOLERANCE
from keras_siglip2.preprocessing.image_io import check_value_range
from keras_siglip2.preprocessing.image_io import default_value_range
from keras_siglip2.preprocessing.image_io import image_to_array
from keras_siglip2.preprocessing.image_io import is_encoded
from keras_siglip2.preprocessing.image_io import is_path
from keras_siglip2.preprocessing.image_io import is_pil_image

NAFLEX_EPS = 1e-5
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3", "lanczos5", "mitchellcubic")


# --------------------------------------------------------------------------
# NaFlex target size
# --------------------------------------------------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    return int(value)


_WARNED_LENGTHS = set()


def warn_beyond_trained_lengths(max_num_patches):
    """Warn once per value when `max_num_patches` is longer than any sequence
    the released NaFlex checkpoints were trained with."""
    longest = max(NAFLEX_TRAINED_LENGTHS)
    if max_num_patches > longest and max_num_patches not in _WARNED_LENGTHS:
        _WARNED_LENGTHS.add(max_num_patches)
        warnings.warn(
            f"max_num_patches={max_num_patches} is beyond the sequence lengths the released "
            f"SigLIP 2 NaFlex checkpoints were trained with {NAFLEX_TRAINED_LENGTHS}; "
            "their quality there is untested (fine, for a model you trained that long).",
            stacklevel=3,
        )


def naflex_target_size(height, width, patch_size, max_num_patches, eps=NAFLEX_EPS):
    """NaFlex resize target (target_height, target_width) for an H×W image.

    The largest scale s (binary search on [eps/10, 100] until the interval is
    narrower than `eps`) such that `ceil(H·s/P)·ceil(W·s/P) ≤ N`; each side is
    then `max(P, P·ceil(side·s/P))`. Both sides are multiples of `patch_size`
    and the patch count h·w is at most `max_num_patches`. Float64 arithmetic,
    like big_vision's op (which runs it in float32) and transformers' port.

    Args:
        height, width: image size in pixels (positive ints).
        patch_size: P, positive int.
        max_num_patches: N, positive int.

    Returns:
        `(target_height, target_width)` as Python ints.
    """
    height = _check_positive_int(height, "height")
    width = _check_positive_int(width, "width")
    patch = _check_positive_int(patch_size, "patch_size")
    limit = _check_positive_int(max_num_patches, "max_num_patches")

    def side(size, scale):
        return max(patch, patch * math.ceil(size * scale / patch))

    low, high = eps / 10, 100.0
    while high - low >= eps:
        mid = (low + high) / 2
        count = (side(height, mid) // patch) * (side(width, mid) // patch)
        if count <= limit:
            low = mid
        else:
            high = mid
    return side(height, low), side(width, low)


def naflex_target_size_tf(height, width, patch_size, max_num_patches, eps=NAFLEX_EPS):
    """TensorFlow-graph version of `naflex_target_size`; identical results.

    All arguments may be Python ints or integer tensors of any (broadcastable)
    shape, so one call can size a whole batch. The search runs in float64 with
    the same operations as the Python version. The number of halvings only
    depends on `eps`, so every element takes the same number of steps.

    Returns:
        `(target_height, target_width)` int32 tensors.
    """
    f64 = tf.float64
    height = tf.cast(height, f64)
    width = tf.cast(width, f64)
    patch = tf.cast(patch_size, f64)
    limit = tf.cast(max_num_patches, f64)
    height, width, patch, limit = (
        x + tf.zeros_like(height + width + patch + limit) for x in (height, width, patch, limit)
    )

    def side(size, scale):
        return tf.maximum(patch, patch * tf.math.ceil(size * scale / patch))

    def body(low, high):
        mid = (low + high) / 2
        count = (side(height, mid) / patch) * (side(width, mid) / patch)
        feasible = count <= limit
        return tf.where(feasible, mid, low), tf.where(feasible, high, mid)

    def cond(low, high):
        return tf.reduce_any(high - low >= eps)

    low = tf.fill(tf.shape(height), tf.constant(eps / 10, f64))
    high = tf.fill(tf.shape(height), tf.constant(100.0, f64))
    low, _ = tf.while_loop(cond, body, (low, high))
    return (
        tf.cast(side(height, low), tf.int32),
        tf.cast(side(width, low), tf.int32),
    )


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _float_rgb_tf(images, value_range, alpha):
    """Numeric (…, H, W, C) tensor → float32 RGB on [0, 255] (graph path)."""
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.string:
        raise TypeError(
            "Inside tf.data the converters take decoded image tensors; decode "
            "encoded images first, e.g. `tf.io.decode_image(x, channels=3, "
            "expand_animations=False)`."
        )
    rank = images.shape.rank
    if rank == 2:
        images = images[:, :, None]
    elif rank not in (3, 4):
        raise ValueError(
            "Image tensors must have shape (H, W), (H, W, C) or (B, H, W, C); got "
            f"{images.shape}."
        )
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32)
    elif images.dtype == tf.bool:
        images = tf.cast(images, tf.float32) * 255.0
    elif images.dtype.is_floating or images.dtype.is_integer:
        low, high = value_range or default_value_range(images.dtype.as_numpy_dtype)
        images = tf.cast(images, tf.float32)
        margin = RANGE_TOLERANCE * (high - low)
        message = (
            f"Image values must lie in the value range ({low:g}, {high:g}) they are read "
            "on (pass the converter the `value_range` of your data); got values outside it:"
        )
        checks = [
            tf.debugging.assert_greater_equal(images, np.float32(low - margin), message=message),
            tf.debugging.assert_less_equal(images, np.float32(high + margin), message=message),
        ]
        with tf.control_dependencies(checks):
            images = tf.identity(images)
        if (low, high) != (0.0, 255.0):
            images = (images - low) * np.float32(255.0 / (high - low))
        images = tf.clip_by_value(images, 0.0, 255.0)
    else:
        raise TypeError(f"Image tensors must be numeric; got dtype {images.dtype.name}.")
    channels = images.shape[-1]
    if channels is None:
        images = tf.ensure_shape(images, images.shape[:-1].concatenate([3]))
        channels = 3
    if channels in (2, 4):
        color, a = images[..., :-1], images[..., -1:]
        if alpha == "white":
            a = a / 255.0
            images = color * a + 255.0 * (1.0 - a)
        else:
            images = color
        channels -= 1
    if channels == 1:
        images = tf.repeat(images, 3, axis=-1)
    elif channels != 3:
        raise ValueError(f"Images need 1, 2, 3 or 4 channels; got shape {images.shape}.")
    return images


def _assert_nonempty(images):
    shape = tf.shape(images)
    return tf.debugging.assert_positive(
        shape[-3:-1], message="Image has a zero-size side (height or width is 0)."
    )


def _split_eager(images, value_range, alpha):
    """Eager input → (list of (H, W, 3) arrays, batched)."""
    if images is None:
        raise TypeError(
            "Expected an image or a batch of images (arrays, PIL images, paths or "
            "bytes); got None."
        )
    if is_pil_image(images) or is_encoded(images) or is_path(images):
        return [image_to_array(images, value_range, alpha)], False
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        return _each_image(images, value_range, alpha), True
    array = convert_to_numpy(images)
    if array.dtype.kind in "SO":  # encoded images in a string tensor / array
        if array.ndim == 0:
            return [image_to_array(array.item(), value_range, alpha)], False
        if array.ndim == 1:
            return _each_image(array.tolist(), value_range, alpha), True
    if array.ndim == 4:
        if array.shape[0] == 0:
            raise ValueError(f"Got an empty batch of images (shape {array.shape}).")
        return _each_image(array, value_range, alpha), True
    return [image_to_array(array, value_range, alpha)], False


def _each_image(images, value_range, alpha):
    """`image_to_array` of every image of a batch; an error names the image."""
    arrays = []
    for index, image in enumerate(images):
        try:
            arrays.append(image_to_array(image, value_range, alpha))
        except (TypeError, ValueError, OSError) as error:
            if len(images) == 1:
                raise
            raise type(error)(f"Image {index} of {len(images)}: {error}") from error
    return arrays


class _EagerImages:
    """Eager input checked and decoded by `__call__`: RGB arrays, and whether
    the input was a batch."""

    def __init__(self, arrays, batched):
        self.arrays = arrays
        self.batched = batched


def _groups_by_size(arrays):
    """Indices of equally sized images, so each group is resized in one op."""
    groups = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape[:2], []).append(i)
    return list(groups.values())


class _ImageConverterBase(PreprocessingLayer):
    def __init__(self, value_range=None, alpha="drop", **kwargs):
        super().__init__(**kwargs)
        self.value_range = check_value_range(value_range)
        self.alpha = check_alpha(alpha)

    def __call__(self, images, **kwargs):
        """Checks and decodes `images` here, before Keras' layer call, which
        would re-raise input errors wrapped in its own text; `call` takes the
        result (a float32 RGB tensor in graphs, `_EagerImages` eagerly)."""
        if in_tf_function():
            images = _float_rgb_tf(images, self.value_range, self.alpha)
        else:
            images = _EagerImages(*_split_eager(images, self.value_range, self.alpha))
        return super().__call__(images, **kwargs)

    def call(self, images, **kwargs):
        if not isinstance(images, _EagerImages):
            batched = images.shape.rank == 4
            if not batched:
                images = images[None]
            with tf.control_dependencies([_assert_nonempty(images)]):
                images = tf.identity(images)
            outputs = self._convert_batch_tf(images, **kwargs)
            if not batched:
                outputs = tf.nest.map_structure(lambda x: x[0], outputs)
            return outputs
        arrays = images.arrays
        results = [None] * len(arrays)
        with tf.device("cpu"):
            for group in _groups_by_size(arrays):
                stack = np.stack([arrays[i] for i in group])
                out = self._convert_batch_eager(tf.convert_to_tensor(stack), **kwargs)
                for j, i in enumerate(group):
                    results[i] = tf.nest.map_structure(lambda x, j=j: x[j], out)
            outputs = tf.nest.map_structure(lambda *xs: tf.stack(xs), *results)
            if not images.batched:
                outputs = tf.nest.map_structure(lambda x: x[0], outputs)
        return convert_preprocessing_outputs(outputs)

    def get_config(self):
        config = super().get_config()
        value_range = None if self.value_range is None else list(self.value_range)
        config.update(value_range=value_range, alpha=self.alpha)
        return config

    def save_to_preset(self, preset_dir):
        """Write `image_converter.json` into a keras-hub preset directory."""
        get_preset_saver(preset_dir).save_image_converter(self)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Load the converter saved in a keras-hub preset directory / handle."""
        return get_preset_loader(preset).load_image_converter(cls, **kwargs)


# --------------------------------------------------------------------------
# Fixed resolution
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2ImageConverter(_ImageConverterBase):
    """Images → `(B, R, R, 3)` float32 in [-1, 1] for a fixed-resolution tower.

    Squash-resizes every image to `image_size`×`image_size` (aspect ratio not
    kept, no crop), then `x / 127.5 - 1`.

    Args:
        image_size: R, the model resolution (224, 256, 384, 512, ...).
        interpolation: `tf.image.resize` method, default `"bilinear"`
            (`"bicubic"` + `antialias=True` is Hugging Face's / keras-hub's
            choice for SigLIP; `"bilinear"` + `antialias=False` is
            big_vision's `resize` op).
        antialias: low-pass filter when shrinking, default `True`.
        value_range: scale of non-`uint8` inputs; default (0, 65535) for
            `uint16`, else (0, 255).
        alpha: `"drop"` (default) or `"white"`, see `image_io`.

    Call:
        `converter(images)` → `(R, R, 3)` for one image, `(B, R, R, 3)` for a
        list/batch.
    """

    def __init__(
        self,
        image_size,
        interpolation="bilinear",
        antialias=True,
        value_range=None,
        alpha="drop",
        **kwargs,
    ):
        super().__init__(value_range=value_range, alpha=alpha, **kwargs)
        if isinstance(image_size, (tuple, list)):
            if len(image_size) != 2 or image_size[0] != image_size[1]:
                raise ValueError(
                    f"`image_size` must be one int (square images); got {image_size!r}."
                )
            image_size = image_size[0]
        self.image_size = _check_positive_int(image_size, "image_size")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {list(INTERPOLATIONS)}; got {interpolation!r}."
            )
        self.interpolation = interpolation
        self.antialias = bool(antialias)

    def _resize(self, images):
        size = self.image_size
        images = tf.image.resize(
            images, [size, size], method=self.interpolation, antialias=self.antialias
        )
        images = tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 255.0)
        images = images / 127.5 - 1.0
        return tf.ensure_shape(images, [None, size, size, 3])

    def _convert_batch_tf(self, images):
        return self._resize(images)

    def _convert_batch_eager(self, images):
        return self._resize(tf.cast(images, tf.float32))

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            interpolation=self.interpolation,
            antialias=self.antialias,
        )
        return config


# --------------------------------------------------------------------------
# NaFlex
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_siglip2")
class NaFlexImageConverter(_ImageConverterBase):
    """Images → NaFlex patches at native aspect ratio (SigLIP 2 NaFlex towers).

    Each image is resized (bilinear, antialiased) to the size
    `naflex_target_size` picks, mapped to [-1, 1], cut into P×P patches in
    row-major order, each flattened in (py, px, channel) order, and padded
    with zero rows to `max_num_patches`.

    Args:
        patch_size: P (16 for the released NaFlex models).
        max_num_patches: N, default 256 (the released checkpoints were
            trained with 128 to 1024; beyond 1024 a warning says so).
        value_range: scale of non-`uint8` inputs; default (0, 65535) for
            `uint16`, else (0, 255).
        alpha: `"drop"` (default) or `"white"`, see `image_io`.

    Call:
        `converter(images, max_num_patches=None)` returns
        `{"patches": (B, N, P·P·3) float32, "patch_mask": (B, N) bool,
        "spatial_shapes": (B, 2) int32 (h, w)}`, without the B axis for one
        image. `max_num_patches` overrides N for this call.
    """

    def __init__(self, patch_size, max_num_patches=256, value_range=None, alpha="drop", **kwargs):
        super().__init__(value_range=value_range, alpha=alpha, **kwargs)
        self.patch_size = _check_positive_int(patch_size, "patch_size")
        self.max_num_patches = _check_positive_int(max_num_patches, "max_num_patches")
        warn_beyond_trained_lengths(self.max_num_patches)

    @property
    def image_size(self):
        """NaFlex has no fixed image size."""
        return None

    def __call__(self, images, max_num_patches=None):
        limit = self.max_num_patches if max_num_patches is None else max_num_patches
        limit = _check_positive_int(limit, "max_num_patches")
        warn_beyond_trained_lengths(limit)
        return super().__call__(images, max_num_patches=limit)

    def _patchify(self, images, target_h, target_w, limit):
        """(B, H, W, 3) float32 [0, 255] → NaFlex dict, all images the same size."""
        p = self.patch_size
        images = tf.image.resize(
            images, tf.stack([target_h, target_w]), method="bilinear", antialias=True
        )
        images = images / 127.5 - 1.0
        h, w = target_h // p, target_w // p
        batch = tf.shape(images)[0]
        patches = tf.reshape(images, [batch, h, p, w, p, 3])
        patches = tf.transpose(patches, [0, 1, 3, 2, 4, 5])
        patches = tf.reshape(patches, [batch, h * w, p * p * 3])
        count = h * w
        patches = tf.pad(patches, [[0, 0], [0, limit - count], [0, 0]])
        patches = tf.ensure_shape(patches, [None, limit, p * p * 3])
        mask = tf.broadcast_to(tf.range(limit) < count, [batch, limit])
        spatial = tf.broadcast_to(tf.cast(tf.stack([h, w]), tf.int32), [batch, 2])
        return {"patches": patches, "patch_mask": mask, "spatial_shapes": spatial}

    def _convert_batch_tf(self, images, max_num_patches):
        shape = tf.shape(images)
        target_h, target_w = naflex_target_size_tf(
            shape[1], shape[2], self.patch_size, max_num_patches
        )
        return self._patchify(images, target_h, target_w, max_num_patches)

    def _convert_batch_eager(self, images, max_num_patches):
        target_h, target_w = naflex_target_size(
            int(images.shape[1]), int(images.shape[2]), self.patch_size, max_num_patches
        )
        images = tf.cast(images, tf.float32)
        return self._patchify(
            images, tf.constant(target_h), tf.constant(target_w), max_num_patches
        )

    def get_config(self):
        config = super().get_config()
        config.update(patch_size=self.patch_size, max_num_patches=self.max_num_patches)
        return config
