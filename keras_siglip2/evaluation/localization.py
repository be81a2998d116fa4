"""Dense and localisation metrics: referring-expression accuracy and segmentation mIoU.

Boxes are `(ymin, xmin, ymax, xmax)` (the order of `keras_siglip2.preprocessing.boxes`),
in any consistent unit. A box with no area (ymax <= ymin or xmax <= xmin) has IoU 0
with everything.
"""

import numpy as np

from keras_siglip2.evaluation.arrays import as_numpy
from keras_siglip2.preprocessing.boxes import box_iou


def _as_boxes(x, name):
    x = as_numpy(x)
    if x.ndim != 2 or x.shape[1] != 4:
        raise ValueError(f"`{name}` must have shape (N, 4); got {x.shape}.")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`{name}` must be numeric; got dtype {x.dtype}.")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return x


def referring_accuracy(predicted_boxes, true_boxes, threshold=0.5):
    """Fraction of predictions whose IoU with the true box is >= `threshold`.

    Args:
        predicted_boxes: (N, 4) `(ymin, xmin, ymax, xmax)`.
        true_boxes: (N, 4), same order and unit.
        threshold: IoU needed for a hit, in (0, 1] (0.5 is the RefCOCO standard).

    Returns:
        float in [0, 1].
    """
    predicted = _as_boxes(predicted_boxes, "predicted_boxes")
    true = _as_boxes(true_boxes, "true_boxes")
    if predicted.shape[0] != true.shape[0]:
        raise ValueError(
            f"`predicted_boxes` has {predicted.shape[0]} boxes but `true_boxes` has "
            f"{true.shape[0]}."
        )
    if predicted.shape[0] == 0:
        raise ValueError("No boxes to score.")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"`threshold` must be in (0, 1]; got {threshold}.")
    iou = box_iou(predicted, true)
    return float(np.mean(iou >= np.float32(threshold)))


def _as_label_map(x, name):
    x = as_numpy(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer class ids; got dtype {x.dtype}.")
    return x.astype(np.int64, copy=False)


def segmentation_confusion(predicted, target, num_classes, ignore_index=None):
    """(num_classes, num_classes) pixel counts, rows = target class, columns = predicted.

    Pixels whose target is `ignore_index` are dropped. Other ids must lie in
    [0, num_classes).
    """
    predicted = _as_label_map(predicted, "predicted")
    target = _as_label_map(target, "target")
    if predicted.shape != target.shape:
        raise ValueError(
            f"`predicted` {predicted.shape} and `target` {target.shape} must have the same shape."
        )
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"`num_classes` must be a positive integer; got {num_classes!r}.")
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    predicted, target = predicted[keep], target[keep]
    if target.size == 0:
        raise ValueError("No pixels to score (empty input, or every target pixel is ignored).")
    for name, ids in (("target", target), ("predicted", predicted)):
        if ids.min() < 0 or ids.max() >= num_classes:
            bad = np.unique(ids[(ids < 0) | (ids >= num_classes)])[:10].tolist()
            raise ValueError(
                f"`{name}` has class ids outside [0, {num_classes}) on scored pixels: {bad}."
            )
    counts = np.bincount(target * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_miou(predicted, target, num_classes, ignore_index=None):
    """Mean intersection-over-union of predicted and target label maps.

    Counts are accumulated over all pixels of all N images (the usual dataset-level
    mIoU, e.g. for ADE20k / Pascal VOC), then IoU_c = TP / (TP + FP + FN) is averaged
    over the classes that occur in the target or the prediction; absent classes are
    left out, not counted as 0 or 1.

    Args:
        predicted: (N, H, W) int class ids (any shape equal to `target` works).
        target: (N, H, W) int class ids.
        num_classes: number of classes; ids must lie in [0, num_classes).
        ignore_index: target id of pixels to skip (e.g. 255), or None. If it lies in
            [0, num_classes), that class is also left out of the mean.

    Returns:
        float in [0, 1].
    """
    confusion = segmentation_confusion(predicted, target, num_classes, ignore_index)
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive
    present = union > 0
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        present[ignore_index] = False
    if not np.any(present):
        raise ValueError("No class to average: only the ignored class occurs.")
    return float(np.mean(true_positive[present] / union[present]))
