import numpy as np
import pytest

from keras_siglip2.evaluation import referring_accuracy
from keras_siglip2.evaluation import segmentation_miou


def iou_reference(a, b):
    """Loop reference for (ymin, xmin, ymax, xmax) boxes."""
    ay0, ax0, ay1, ax1 = a
    by0, bx0, by1, bx1 = b
    area_a = max(ay1 - ay0, 0) * max(ax1 - ax0, 0)
    area_b = max(by1 - by0, 0) * max(bx1 - bx0, 0)
    if area_a == 0 or area_b == 0:
        return 0.0
    inter = max(min(ay1, by1) - max(ay0, by0), 0) * max(min(ax1, bx1) - max(ax0, bx0), 0)
    return inter / (area_a + area_b - inter)


def test_referring_accuracy_hand_made():
    true = np.array([[0, 0, 1, 1]] * 4 + [[0.5, 0.5, 0.5, 0.5]], float)
    pred = np.array([
        [0, 0, 1, 1],          # IoU 1
        [0, 0, 0.5, 1],        # IoU exactly 0.5: a hit at threshold 0.5
        [0, 0.5, 1, 1.5],      # IoU 1/3
        [1, 1, 0, 0],          # inverted (no area): IoU 0
        [0.5, 0.5, 0.5, 0.5],  # degenerate box equal to a degenerate target: IoU 0
    ])
    assert referring_accuracy(pred, true) == pytest.approx(2 / 5)
    assert referring_accuracy(pred, true, threshold=0.3) == pytest.approx(3 / 5)
    assert referring_accuracy(pred, true, threshold=1.0) == pytest.approx(1 / 5)


def test_referring_accuracy_matches_reference(rng):
    def boxes(n):
        yx = rng.uniform(0, 1, size=(n, 2, 2))
        yx.sort(axis=1)  # (min, max) per axis
        return np.stack([yx[:, 0, 0], yx[:, 0, 1], yx[:, 1, 0], yx[:, 1, 1]], axis=1)

    true = boxes(200)
    pred = np.clip(true + rng.normal(scale=0.1, size=true.shape), 0, 1)
    for threshold in (0.3, 0.5, 0.7):
        want = np.mean([iou_reference(p, t) >= threshold for p, t in zip(pred, true)])
        assert referring_accuracy(pred, true, threshold) == pytest.approx(want)
        assert 0 < want < 1


@pytest.mark.parametrize(
    "pred, true, kwargs, match",
    [
        (np.zeros((2, 4)), np.zeros((3, 4)), {}, "2 boxes"),
        (np.zeros((2, 3)), np.zeros((2, 3)), {}, r"\(N, 4\)"),
        (np.zeros((0, 4)), np.zeros((0, 4)), {}, "No boxes"),
        (np.zeros((1, 4)), np.zeros((1, 4)), {"threshold": 0.0}, "threshold"),
        (np.full((1, 4), np.nan), np.zeros((1, 4)), {}, "NaN"),
    ],
)
def test_referring_accuracy_bad_input(pred, true, kwargs, match):
    with pytest.raises(ValueError, match=match):
        referring_accuracy(pred, true, **kwargs)


def miou_reference(pred, target, num_classes, ignore_index=None):
    """Loop reference: dataset-level counts, mean over classes present anywhere."""
    tp = np.zeros(num_classes)
    fp = np.zeros(num_classes)
    fn = np.zeros(num_classes)
    for p, t in zip(pred.ravel(), target.ravel()):
        if ignore_index is not None and t == ignore_index:
            continue
        if p == t:
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    ious = [tp[c] / (tp[c] + fp[c] + fn[c]) for c in range(num_classes)
            if tp[c] + fp[c] + fn[c] > 0 and c != ignore_index]
    return float(np.mean(ious))


def test_miou_hand_made():
    target = np.array([[[0, 0, 1], [1, 2, 2]]])
    pred = np.array([[[0, 1, 1], [1, 2, 0]]])
    # IoU: class 0 = 1/3, class 1 = 2/3, class 2 = 1/2; class 3 never occurs.
    assert segmentation_miou(pred, target, num_classes=4) == pytest.approx(0.5)
    target_ignored = target.copy()
    target_ignored[0, 1, 2] = 255
    # The ignored pixel drops out: class 0 = 1/2, class 1 = 2/3, class 2 = 1.
    assert segmentation_miou(pred, target_ignored, 4, ignore_index=255) == pytest.approx(
        (1 / 2 + 2 / 3 + 1) / 3
    )


def test_miou_class_only_in_prediction_counts_as_zero():
    target = np.zeros((1, 2, 2), int)
    pred = np.array([[[0, 0], [0, 3]]])
    assert segmentation_miou(pred, target, 5) == pytest.approx((3 / 4 + 0) / 2)


def test_miou_is_dataset_level_not_per_image_mean():
    # Image 1 is perfect on class 0; image 2 gets 1 of 3 pixels of class 0.
    target = np.zeros((2, 1, 3), int)
    pred = np.array([[[0, 0, 0]], [[0, 1, 1]]])
    # Counts: class 0 TP 4, FN 2 → 4/6; class 1 FP 2 → 0. Mean 1/3 (the mean of
    # per-image mIoUs would be (1 + 1/6) / 2).
    assert segmentation_miou(pred, target, 2) == pytest.approx((4 / 6 + 0) / 2)


@pytest.mark.parametrize("ignore_index", [None, 255, 2])
def test_miou_matches_reference(rng, ignore_index):
    target = rng.integers(0, 5, size=(3, 7, 9))
    noise = rng.integers(0, 5, size=target.shape)
    pred = np.where(rng.uniform(size=target.shape) < 0.6, target, noise)
    if ignore_index == 255:
        target[rng.uniform(size=target.shape) < 0.2] = 255
    got = segmentation_miou(pred, target, 5, ignore_index=ignore_index)
    assert got == pytest.approx(miou_reference(pred, target, 5, ignore_index))


@pytest.mark.parametrize(
    "pred, target, kwargs, match",
    [
        (np.zeros((1, 2, 2), int), np.zeros((1, 2, 3), int), {}, "same shape"),
        (np.zeros((1, 2, 2), int), np.full((1, 2, 2), 5), {}, "outside"),
        (np.full((1, 2, 2), -1), np.zeros((1, 2, 2), int), {}, "outside"),
        (np.zeros((1, 2, 2)), np.zeros((1, 2, 2), int), {}, "integer"),
        (np.zeros((1, 2, 2), int), np.full((1, 2, 2), 255), {"ignore_index": 255}, "No pixels"),
        (np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), {"num_classes": 0}, "num_classes"),
    ],
)
def test_miou_bad_input(pred, target, kwargs, match):
    kwargs = {"num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        segmentation_miou(pred, target, **kwargs)
