"""LocCa box tokens: boxes written as quantised coordinate tokens.

Box format: `(ymin, xmin, ymax, xmax)` in relative coordinates, `0 <= v <= 1`
(the big_vision / TF Object Detection order).

Quantisation: each coordinate falls into one of `num_bins` equal bins (default 1000),
`bin = clip(floor(v · num_bins), 0, num_bins - 1)`; the inverse returns the bin centre
`(bin + 0.5) / num_bins`, so a round trip moves a coordinate by at most half a bin.

Token format: coordinate bin `k` is token id `coordinate_token_offset + k`, so the
coordinate tokens occupy the id range
`[coordinate_token_offset, coordinate_token_offset + num_bins)`; a box is 4 tokens in
the order ymin, xmin, ymax, xmax. The offset is explicit in every call.
`coordinate_token_offset(vocab_size, num_bins, append=...)` gives the two layouts:

- `append=True` (default): `offset = vocab_size`; the decoder's output vocabulary grows
  to `vocab_size + num_bins` and no text token changes meaning (what the small demo
  vocabulary needs — it has fewer ids than bins).
- `append=False`: `offset = vocab_size - num_bins`; the top `num_bins` ids of a large
  vocabulary (e.g. Gemma's 256,000) are reserved for coordinates and the decoder keeps
  the text vocabulary size.

Every function accepts NumPy arrays (returns NumPy) or `tf.Tensor`s (returns tensors,
graph-safe inside `tf.data.Dataset.map` and `tf.function`).
"""

import sys

import numpy as np

DEFAULT_NUM_BINS = 1000


def _is_tf(*values):
    """True if any value is a TensorFlow tensor (symbolic or eager)."""
    tf = sys.modules.get("tensorflow")  # not imported → no value can be a tf.Tensor
    return tf is not None and any(tf.is_tensor(v) for v in values)


def coordinate_token_offset(vocab_size, num_bins=DEFAULT_NUM_BINS, append=True):
    """First coordinate token id for a text vocabulary of `vocab_size` ids.

    `append=True`: ids `vocab_size … vocab_size + num_bins - 1` (new ids after the text
    vocabulary). `append=False`: ids `vocab_size - num_bins … vocab_size - 1` (the top
    of the text vocabulary is reserved).
    """
    vocab_size, num_bins = int(vocab_size), int(num_bins)
    if append:
        return vocab_size
    if num_bins > vocab_size:
        raise ValueError(f"Cannot reserve {num_bins} coordinate ids in a vocabulary of {vocab_size}.")
    return vocab_size - num_bins


def quantize_boxes(boxes, num_bins=DEFAULT_NUM_BINS):
    """(..., 4) relative coordinates → (..., 4) int32 bins in `[0, num_bins)`."""
    if _is_tf(boxes):
        import tensorflow as tf

        scaled = tf.math.floor(tf.cast(boxes, tf.float32) * float(num_bins))
        return tf.cast(tf.clip_by_value(scaled, 0.0, float(num_bins - 1)), tf.int32)
    scaled = np.floor(np.asarray(boxes, np.float32) * np.float32(num_bins))
    return np.clip(scaled, 0, num_bins - 1).astype(np.int32)


def dequantize_boxes(bins, num_bins=DEFAULT_NUM_BINS):
    """(..., 4) integer bins → (..., 4) float32 bin centres. Out-of-range bins are
    clipped into `[0, num_bins)`."""
    if _is_tf(bins):
        import tensorflow as tf

        bins = tf.clip_by_value(tf.cast(bins, tf.int32), 0, num_bins - 1)
        return (tf.cast(bins, tf.float32) + 0.5) / float(num_bins)
    bins = np.clip(np.asarray(bins).astype(np.int64), 0, num_bins - 1)
    return ((bins.astype(np.float32) + np.float32(0.5)) / np.float32(num_bins)).astype(np.float32)


def boxes_to_tokens(boxes, coordinate_token_offset, num_bins=DEFAULT_NUM_BINS):
    """(..., 4) boxes → (..., 4) int32 token ids `coordinate_token_offset + bin`."""
    return quantize_boxes(boxes, num_bins) + int(coordinate_token_offset)


def is_coordinate_token(tokens, coordinate_token_offset, num_bins=DEFAULT_NUM_BINS):
    """Boolean mask: which ids lie in the coordinate token range."""
    low, high = int(coordinate_token_offset), int(coordinate_token_offset) + int(num_bins)
    if _is_tf(tokens):
        import tensorflow as tf

        tokens = tf.cast(tokens, tf.int64)
        return tf.logical_and(tokens >= low, tokens < high)
    tokens = np.asarray(tokens).astype(np.int64)
    return (tokens >= low) & (tokens < high)


def tokens_to_boxes(tokens, coordinate_token_offset, num_bins=DEFAULT_NUM_BINS):
    """(..., 4) token ids → (..., 4) float32 boxes at the bin centres.

    Ids outside the coordinate range (a decoder may emit any id) are clipped to the
    nearest bin; check `is_coordinate_token` first where that matters.
    """
    if _is_tf(tokens):
        import tensorflow as tf

        bins = tf.cast(tokens, tf.int64) - int(coordinate_token_offset)
        bins = tf.clip_by_value(bins, 0, num_bins - 1)
        return dequantize_boxes(tf.cast(bins, tf.int32), num_bins)
    bins = np.asarray(tokens).astype(np.int64) - int(coordinate_token_offset)
    return dequantize_boxes(bins, num_bins)


def box_iou(boxes_a, boxes_b):
    """Intersection over union of (..., 4) boxes, broadcast against each other.

    Element-wise: `box_iou(a, b)` with equal shapes pairs box i with box i; for all
    pairs use `box_iou(a[:, None], b[None, :])`. Empty boxes (no area) give IoU 0.
    Returns float32 (...).
    """
    if _is_tf(boxes_a, boxes_b):
        import tensorflow as tf

        xp_max, xp_min, cast = tf.maximum, tf.minimum, lambda x: tf.cast(x, tf.float32)
        unstack = lambda x: tf.unstack(x, 4, axis=-1)  # noqa: E731
        where = tf.where
    else:
        xp_max, xp_min = np.maximum, np.minimum
        cast = lambda x: np.asarray(x, np.float32)  # noqa: E731
        unstack = lambda x: [x[..., i] for i in range(4)]  # noqa: E731
        where = np.where
    ay0, ax0, ay1, ax1 = unstack(cast(boxes_a))
    by0, bx0, by1, bx1 = unstack(cast(boxes_b))
    inter_h = xp_max(xp_min(ay1, by1) - xp_max(ay0, by0), 0.0)
    inter_w = xp_max(xp_min(ax1, bx1) - xp_max(ax0, bx0), 0.0)
    intersection = inter_h * inter_w
    area_a = xp_max(ay1 - ay0, 0.0) * xp_max(ax1 - ax0, 0.0)
    area_b = xp_max(by1 - by0, 0.0) * xp_max(bx1 - bx0, 0.0)
    union = area_a + area_b - intersection
    safe_union = where(union > 0, union, xp_max(union, 0.0) + 1.0)
    iou = where(union > 0, intersection / safe_union, 0.0 * union)
    return iou if _is_tf(iou) else np.asarray(iou, np.float32)
