"""Pictures of what a model sees: zero-shot bar charts and patch-similarity heat maps.

Plots are written with matplotlib's Agg backend (no display needed).
"""

import numpy as np

from keras_siglip2.preprocessing.image_io import load_image

MAX_PLOTTED_IMAGES = 16


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_zero_shot(images, labels, probabilities, path, titles=None, top=5):
    """One row per image: the image, and its `top` most probable labels as bars.

    Args:
        images: list of images (anything `load_image` reads), at most 16 plotted.
        labels: the C label strings.
        probabilities: `(N, C)` from `SigLIP2.zero_shot`.
        path: output file (`.png`, `.pdf`, ...).
        titles: optional N strings shown above the images (e.g. file names).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (len(images), len(labels)):
        raise ValueError(
            f"`probabilities` has shape {probabilities.shape}; expected "
            f"({len(images)}, {len(labels)}) for {len(images)} images and {len(labels)} labels."
        )
    plt = _pyplot()
    count = min(len(images), MAX_PLOTTED_IMAGES)
    top = min(top, len(labels))
    figure, axes = plt.subplots(count, 2, figsize=(7, 2.2 * count), squeeze=False)
    for row, (image_axis, bar_axis) in enumerate(axes):
        image_axis.imshow(load_image(images[row]))
        image_axis.axis("off")
        if titles is not None:
            image_axis.set_title(str(titles[row])[-40:], fontsize=8)
        order = np.argsort(-probabilities[row], kind="stable")[:top][::-1]
        bar_axis.barh(
            [labels[i] for i in order],
            probabilities[row, order],
            color=["tab:green" if i == order[-1] else "tab:blue" for i in order],
        )
        bar_axis.set_xlim(0, 1)
        bar_axis.tick_params(labelsize=8)
    axes[-1, 1].set_xlabel("sigmoid probability (independent per label)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def patch_similarity(model, image, text, max_num_patches=None):
    """Cosine similarity `(h, w)` of each image patch with a text query.

    Patches are embedded in the joint image–text space by the MAP head, one
    patch at a time (`SigLIP2.patch_features(space="joint")`); `(h, w)` is the
    image's patch grid.
    """
    (patches,) = model.patch_features([image], space="joint", max_num_patches=max_num_patches)
    query = model.embed_texts([text], verbose=0)[0]
    return patches @ query


def plot_patch_similarity(model, image, text, path, max_num_patches=None):
    """Render `patch_similarity` as a heat map over the image and save it.

    Returns the `(h, w)` similarity map.
    """
    similarity = patch_similarity(model, image, text, max_num_patches)
    pixels = load_image(image)
    height, width = pixels.shape[:2]
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(pixels)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(pixels)
    heat = axes[1].imshow(
        similarity, cmap="inferno", alpha=0.6, extent=(0, width, height, 0),
        interpolation="bilinear",
    )
    axes[1].set_title(f"patch similarity: {text!r}"[:60], fontsize=9)
    for axis in axes:
        axis.axis("off")
    figure.colorbar(heat, ax=axes[1], fraction=0.046, label="cosine")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return similarity
