"""Load any single image input as an RGB array.

Accepted inputs (one image):

- NumPy arrays (H, W), (H, W, 1), (H, W, 2) (grey + alpha), (H, W, 3) or
  (H, W, 4) (RGBA); backend tensors (JAX, torch) and eager `tf.Tensor`s too.
  `uint8` arrays are taken as they are. Every other numeric dtype is read on
  the scale given by `value_range`; by default (`None`) that is (0, 65535)
  for `uint16` (16-bit images) and (0, 255) for everything else; pass e.g.
  `value_range=(0, 1)` for float images in [0, 1]. Nothing is guessed from
  the values (a dark [0, 255] image and a [0, 1] image can hold the same
  numbers), but implausible values are caught: a float image whose values
  all lie in [-1, 1] while read on (0, 255) gets a warning, and values more
  than 2% of the range outside it are refused (small overshoots, e.g. from
  bicubic resampling, are clipped). `bool` is 0 / 255.
- `PIL.Image.Image` in any mode (palette, grey, CMYK, ... are converted).
- A file path (`str` or `os.PathLike`) or encoded bytes (PNG, JPEG, WebP,
  GIF, BMP, TIFF — whatever Pillow reads). The EXIF orientation is applied
  (what an image viewer shows); animated files give their first frame.
  16-bit grey files (Pillow modes `I;16*`) are scaled by their full range
  (65535 → 255); 32-bit grey (`I`, `F`) is read on `value_range` like an
  array.

Grey images are repeated to 3 channels. Alpha (RGBA, grey + alpha, palette
with transparency) is handled by `alpha`: `"drop"` (default) discards it and
keeps the stored colours — this is what the reference pipeline did
(big_vision decodes with `tf.io.decode_image(channels=3)`), so it matches
the images the released models were trained on; `"white"` composites onto a
white background (`rgb·a + 255·(1 − a)`), which is what Hugging Face's image
processors do and what a viewer shows for transparent regions.
"""

import io
import os
import warnings

import numpy as np
from keras_hub.src.utils.tensor_utils import convert_to_numpy

ALPHA_MODES = ("drop", "white")
# Values this fraction of `value_range` outside it are refused, not clipped.
RANGE_TOLERANCE = 0.02


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError as e:  # pragma: no cover - pillow is a dependency
        raise ImportError("Reading image files and PIL images needs `pillow`.") from e
    return Image, ImageOps


def check_alpha(alpha):
    if alpha not in ALPHA_MODES:
        raise ValueError(f"`alpha` must be one of {list(ALPHA_MODES)}; got {alpha!r}.")
    return alpha


def check_value_range(value_range):
    """`None` (the default scale of each dtype) or a `(low, high)` pair of floats."""
    if value_range is None:
        return None
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`value_range` must be a pair (low, high); got {value_range!r}.") from e
    if not high > low:
        raise ValueError(f"`value_range` must have low < high; got {value_range!r}.")
    return (low, high)


def is_pil_image(x):
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, Image.Image)


def is_encoded(x):
    return isinstance(x, (bytes, bytearray, memoryview))


def is_path(x):
    return isinstance(x, (str, os.PathLike))


def _open_pil(source, name):
    """Decode a file path or bytes with Pillow, with errors that say what to do."""
    Image, ImageOps = _pil()
    try:
        with Image.open(source) as image:
            image.load()
            # Returns a new, loaded image (a plain copy when there is no EXIF
            # orientation), so it stays valid after the file is closed.
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(
            f"Could not read {name} as an image ({type(e).__name__}: {e}). The file "
            "is corrupt, truncated or not an image format Pillow reads; re-export it "
            "as PNG or JPEG, or pass the decoded pixels as a (H, W, 3) uint8 array."
        ) from e


def _read_path(path):
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = path.decode()
    if path.startswith(("http://", "https://", "gs://", "s3://")):
        raise ValueError(
            f"Image {path!r} is a URL; this package does not download. Fetch the "
            "file first and pass its local path or its bytes."
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"Image file {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"Image path {path!r} is a directory, not an image file.")
    return _open_pil(path, f"image file {path!r}")


def _pil_to_array(image):
    """PIL image → (uint8 or uint16 array (H, W, C) with C in {1, 2, 3, 4}, or a
    32-bit grey array; the fixed value range of 16-bit grey, else None)."""
    mode = image.mode
    if mode.startswith("I;16"):  # 16-bit grey: Pillow's own conversion would clip
        return np.asarray(image).astype(np.uint16), (0.0, 65535.0)
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA" if ("transparency" in image.info or mode == "PA") else "RGB")
    elif mode in ("1", "L", "LA", "RGB", "RGBA", "I", "F"):
        pass
    elif mode in ("RGBa",):
        image = image.convert("RGBA")
    elif mode in ("La",):
        image = image.convert("LA")
    else:  # CMYK, YCbCr, LAB, HSV, ...
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return array, None


def _check_shape(array):
    shape = array.shape
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3 or shape[-1] not in (1, 2, 3, 4):
        hint = ""
        if array.ndim == 3 and shape[0] in (1, 3, 4):
            hint = " It looks channels-first; transpose it to (H, W, C)."
        elif array.ndim == 4:
            hint = " That is a batch; pass it to a converter or index one image."
        raise ValueError(
            "An image must have shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or "
            f"(H, W, 4); got {shape}.{hint}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"Image has a zero-size side: shape {shape}. Every image needs at least "
            "1×1 pixels; drop empty images (e.g. empty crops) before preprocessing."
        )
    return array


def _to_rgb(array, alpha):
    """(H, W, C) uint8/float32 on [0, 255] → (H, W, 3), same dtype unless compositing."""
    channels = array.shape[-1]
    if channels in (2, 4):
        color, a = array[..., :-1], array[..., -1:]
        if alpha == "white":
            a = a.astype(np.float32) / np.float32(255.0)
            array = color.astype(np.float32) * a + np.float32(255.0) * (np.float32(1.0) - a)
        else:
            array = color
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def image_to_array(image, value_range=None, alpha="drop"):
    """One image → (H, W, 3) array: `uint8`, or `float32` on [0, 255].

    Unlike `load_image`, float inputs (and alpha compositing) keep their
    fractional values instead of being rounded to `uint8`. The converters use
    this. See the module docstring for the accepted inputs.
    """
    check_alpha(alpha)
    value_range = check_value_range(value_range)
    if image is None:
        raise TypeError(
            "Expected an image (array, PIL image, file path or encoded bytes); got None."
        )
    fixed_range = None
    if is_pil_image(image):
        array, fixed_range = _pil_to_array(image)
    elif is_encoded(image):
        if len(image) == 0:
            raise ValueError("Got empty bytes where an encoded image was expected.")
        array, fixed_range = _pil_to_array(_open_pil(io.BytesIO(bytes(image)), f"{len(image)} bytes"))
    elif is_path(image):
        array, fixed_range = _pil_to_array(_read_path(image))
    else:
        try:
            array = convert_to_numpy(image)
        except Exception as e:
            raise TypeError(
                "Expected an image (array, PIL image, file path or encoded bytes); "
                f"got {type(image).__name__}."
            ) from e
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Image arrays must be numeric; got dtype {array.dtype} "
                f"(from {type(image).__name__})."
            )
        if array.ndim == 0:
            raise TypeError(
                "Expected an image (array, PIL image, file path or encoded bytes); got "
                f"the single number {array.item()!r:.40} ({type(image).__name__})."
            )
    array = _check_shape(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * np.uint8(255)
    elif array.dtype != np.uint8:
        scale = fixed_range or value_range or default_value_range(array.dtype)
        array = _rescale(array, scale, array.dtype.kind == "f")
    return _to_rgb(array, alpha)


def default_value_range(dtype):
    """The scale of a dtype when `value_range` is None: (0, 65535) for `uint16`,
    else (0, 255)."""
    return (0.0, 65535.0) if np.dtype(dtype) == np.uint16 else (0.0, 255.0)


def _range_hint(low, high, value_range):
    """What to do about values in [low, high] that do not fit `value_range`."""
    for scale, name in (((0, 1), "[0, 1]"), ((-1, 1), "[-1, 1]"), ((0, 255), "8-bit data")):
        if scale[0] <= low and high <= scale[1] and tuple(value_range) != scale:
            return f"If it is {name}, pass `value_range={scale}`."
    if 0 <= low and high <= 65535 * (1 + RANGE_TOLERANCE):
        return "If it is 16-bit data, pass it as a `uint16` array or with `value_range=(0, 65535)`."
    return "Pass the scale the values are on as `value_range=(low, high)`."


def _rescale(array, value_range, is_float):
    """Non-uint8 array → float32 on [0, 255]; refuses values far outside `value_range`."""
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("Image contains NaN or infinite values.")
    low, high = value_range
    smallest, largest = float(array.min()), float(array.max())
    margin = RANGE_TOLERANCE * (high - low)
    if smallest < low - margin or largest > high + margin:
        raise ValueError(
            f"Image values lie in [{smallest:g}, {largest:g}], far outside the "
            f"value range ({low:g}, {high:g}) they are read on. "
            + _range_hint(smallest, largest, value_range)
        )
    if (low, high) == (0.0, 255.0) and is_float and -1.0 <= smallest and largest <= 1.0:
        if array.size > 1 and (largest > 0.0 or smallest < 0.0):
            warnings.warn(
                f"Image values all lie in [{smallest:g}, {largest:g}] but are read on "
                "(0, 255); the image will be nearly black. "
                + _range_hint(smallest, largest, value_range),
                stacklevel=3,
            )
    if (low, high) != (0.0, 255.0):
        array = (array - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.clip(array, 0.0, 255.0)


def load_image(image, value_range=None, alpha="drop"):
    """Load one image as a `uint8` (H, W, 3) NumPy array.

    Args:
        image: a NumPy array / tensor, a `PIL.Image.Image`, a file path or
            encoded bytes (see the module docstring).
        value_range: the scale of non-`uint8` numeric arrays; default: (0, 65535)
            for `uint16`, else (0, 255); e.g. `(0, 1)` for float images in [0, 1].
        alpha: `"drop"` (default) or `"white"` (composite onto white).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: unreadable/corrupt data, a bad shape, a zero-size side, or
            values far outside `value_range`.
        TypeError: something that is not an image.
    """
    array = image_to_array(image, value_range=value_range, alpha=alpha)
    if array.dtype != np.uint8:
        array = np.round(array).astype(np.uint8)
    return array
