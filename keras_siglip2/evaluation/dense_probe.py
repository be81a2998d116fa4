"""Dense probe: a linear per-patch segmentation classifier on frozen patch features.

The standard check of dense feature quality (as in the SigLIP 2 paper's
segmentation probes, small): fit a softmax regression from each patch's
feature to the label at the patch centre on training images, then report the
mean IoU of its per-patch predictions on held-out images.
"""

import numpy as np

from keras_siglip2.evaluation.localization import segmentation_miou


def patch_labels(label_map, grid):
    """`label_map (H, W)` int → `(h, w)`: the label at each patch centre of an
    `h × w` patch grid laid over the whole image (nearest pixel)."""
    label_map = np.asarray(label_map)
    rows, cols = grid
    ys = ((np.arange(rows) + 0.5) * label_map.shape[0] / rows).astype(int)
    xs = ((np.arange(cols) + 0.5) * label_map.shape[1] / cols).astype(int)
    return label_map[ys[:, None], xs[None, :]]


def _flatten(features, label_maps):
    feature_rows = [np.asarray(f, "float32").reshape(-1, np.shape(f)[-1]) for f in features]
    labels = [patch_labels(m, np.shape(f)[:2]).reshape(-1) for f, m in zip(features, label_maps)]
    return np.concatenate(feature_rows), np.concatenate(labels)


def fit_linear_probe(features, labels, num_classes, steps=300, learning_rate=0.05, seed=0):
    """Softmax regression by full-batch Adam (NumPy) on standardised features.

    Args: `features (M, D)`, `labels (M,)` int in [0, num_classes).
    Returns `predict(features (M', D)) → (M',)` int labels.
    """
    mean, scale = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / scale
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.01, (x.shape[1], num_classes)).astype("float32")
    bias = np.zeros(num_classes, "float32")
    one_hot = np.eye(num_classes, dtype="float32")[labels]
    moments = [np.zeros_like(weights), np.zeros_like(bias)]
    squares = [np.zeros_like(weights), np.zeros_like(bias)]
    for step in range(1, steps + 1):
        logits = x @ weights + bias
        logits -= logits.max(1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(1, keepdims=True)
        error = (probabilities - one_hot) / len(x)
        gradients = [x.T @ error + 1e-4 * weights, error.sum(0)]
        for i, (parameter, gradient) in enumerate(zip((weights, bias), gradients)):
            moments[i] = 0.9 * moments[i] + 0.1 * gradient
            squares[i] = 0.999 * squares[i] + 0.001 * gradient**2
            update = (moments[i] / (1 - 0.9**step)) / (np.sqrt(squares[i] / (1 - 0.999**step)) + 1e-8)
            parameter -= learning_rate * update

    def predict(new_features):
        return (((new_features - mean) / scale) @ weights + bias).argmax(1)

    return predict


def dense_probe_miou(train_features, train_label_maps, test_features, test_label_maps, num_classes):
    """Fit on the training images' patches, score the test images' patches.

    Args: lists of per-image `(h, w, D)` patch features (grids may differ per
    image) and `(H, W)` int label maps (labels in [0, num_classes)).
    Returns `{"dense_probe_miou", "dense_probe_accuracy"}` over test patches.
    """
    x_train, y_train = _flatten(train_features, train_label_maps)
    x_test, y_test = _flatten(test_features, test_label_maps)
    predicted = fit_linear_probe(x_train, y_train, num_classes)(x_test)
    return {
        "dense_probe_miou": segmentation_miou(predicted, y_test, num_classes),
        "dense_probe_accuracy": float((predicted == y_test).mean()),
    }
