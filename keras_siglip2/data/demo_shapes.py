"""The built-in procedural demo dataset: coloured shapes, multilingual captions.

(The `siglip2 demo` command that trains on it is `keras_siglip2.demo`.)

Nothing is downloaded; every example is a pure function of `(seed, split, index)`, so
`make_demo_examples(n, seed)[:k] == make_demo_examples(k, seed)`.

Each image (uint8, height and width drawn independently from 48–160 px, so aspect ratios
from about 1:3 to 3:1) shows one to three shapes on a plain, gradient, noisy or striped
background of low-saturation colours. Shapes: circle, square, triangle, star, cross,
ring; colours: red, orange, yellow, green, blue, purple. The first shape is the *main
object*: its area is at least about twice that of any other shape; shapes never
overlap, and no (colour, shape) pair appears twice in one image.

Classes: the 36 "colour shape" pairs, `class_id = colour_index · 6 + shape_index`; the
label of an image is its main object's class (a 36-way zero-shot task whose prompts are
`demo_class_names(language)`, e.g. "red circle", "roter kreis", "赤い円").

Per example (a dict):
    image          uint8 (H, W, 3)
    mask           uint8 (H, W): 0 background, class_id + 1 where a shape covers the
                   pixel centre (coverage >= 0.5)
    label          int, the main object's class id
    caption        str, lowercase, in `language`
    language       str: "en", "de", "fr", "ru" or "ja"
    boxes          float32 (R, 4): (ymin, xmin, ymax, xmax) in [0, 1], the tight box of
                   each shape's mask pixels (pixel edges), main object first
    region_texts   list of R str: "colour shape" in the caption's language
    region_labels  int32 (R,): the regions' class ids

Captions come from four templates per language (main object alone; with the
background; all objects with sizes; "a picture of …"; see `demo_captions`). By default
60% of captions are English and the rest are spread evenly over German, French,
Russian and Japanese.
"""

import math

import numpy as np

from keras_siglip2.data.demo_captions import LANGUAGES, NUM_TEMPLATES, caption, region_text

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
BACKGROUNDS = ("plain", "gradient", "noise", "stripes")
SPLITS = ("train", "test", "validation")
NUM_CLASSES = len(SHAPES) * len(COLOURS)
MIN_SIDE, MAX_SIDE = 48, 160

_COLOUR_RGB = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 35),
    "green": (40, 165, 55),
    "blue": (35, 80, 215),
    "purple": (135, 45, 185),
}


def class_id(colour, shape):
    return COLOURS.index(colour) * len(SHAPES) + SHAPES.index(shape)


def class_colour_shape(class_index):
    """(colour, shape) of a class id."""
    return COLOURS[class_index // len(SHAPES)], SHAPES[class_index % len(SHAPES)]


def demo_class_names(language="en"):
    """The 36 class names ("red circle", …) in `language`, indexed by class id."""
    return [region_text(*class_colour_shape(k), language=language) for k in range(NUM_CLASSES)]


def demo_caption_corpus():
    """Every word form the demo captions and region texts can contain, as a
    deterministic list of texts (each template, class, background and language,
    with one to three objects), for vocabulary training."""
    texts = []
    for language in LANGUAGES:
        texts.extend(demo_class_names(language))
        for template in range(NUM_TEMPLATES):
            for main in range(NUM_CLASSES):
                for b, background in enumerate(BACKGROUNDS):
                    count = 1 + (main + b + template) % 3
                    members = [main] + [(main + 7 * k + 5 * b + 1) % NUM_CLASSES for k in range(count - 1)]
                    objects = [class_colour_shape(m) for m in dict.fromkeys(members)]
                    texts.append(caption(objects, background, language, template))
    return list(dict.fromkeys(texts))


# ---------------------------------------------------------------------------------
# Rendering (NumPy only).
# ---------------------------------------------------------------------------------

_STAR_POINTS = 5
_STAR_OUTER, _STAR_INNER = 0.95, 0.95 * 0.42
_STAR_HALF_SECTOR = math.pi / _STAR_POINTS
_STAR_TIP = np.array([_STAR_OUTER, 0.0])
_STAR_VALLEY = _STAR_INNER * np.array([math.cos(_STAR_HALF_SECTOR), math.sin(_STAR_HALF_SECTOR)])
_edge = _STAR_VALLEY - _STAR_TIP
_STAR_NORMAL = np.array([-_edge[1], _edge[0]]) / np.linalg.norm(_edge)
if _STAR_NORMAL @ _STAR_TIP < 0:  # point away from the centre
    _STAR_NORMAL = -_STAR_NORMAL
_TRIANGLE_NORMALS = np.array(
    [[math.cos(a), math.sin(a)] for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3,
                                          math.pi / 2 + 4 * math.pi / 3)]
)


# Area of each shape at circumradius 1 (matches `_signed_distance`).
_UNIT_AREA = {
    "circle": math.pi * 0.92**2,
    "square": (2 * 0.68) ** 2,
    "ring": math.pi * (0.94**2 - 0.42**2),
    "cross": 2 * (2 * 0.92) * 0.6 - 0.6**2,
    "triangle": 3 * math.sqrt(3) / 4 * 0.95**2,
    "star": 2 * _STAR_POINTS * 0.5 * _STAR_OUTER * _STAR_INNER * math.sin(_STAR_HALF_SECTOR),
}


def _signed_distance(shape, u, v):
    """Signed distance (unit radius; negative inside) in the shape's own frame,
    `u` to the right, `v` downwards. Exact or a close lower bound near the edges,
    which is all anti-aliasing needs."""
    if shape == "circle":
        return np.hypot(u, v) - 0.92
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.68
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.68) - 0.26
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        horizontal = np.maximum(au - 0.92, av - 0.3)
        vertical = np.maximum(au - 0.3, av - 0.92)
        return np.minimum(horizontal, vertical)
    if shape == "triangle":
        # Equilateral, circumradius 0.95, apex up (normals point down, lower left,
        # lower right in image coordinates); inradius = circumradius / 2.
        projections = u[..., None] * _TRIANGLE_NORMALS[:, 0] + v[..., None] * _TRIANGLE_NORMALS[:, 1]
        return projections.max(-1) - 0.95 / 2
    if shape == "star":
        # Fold the plane into one half spike: angle from the top, modulo the spike
        # period, reflected to [0, π/5]; the star there is the triangle
        # (centre, tip, valley), bounded by the tip–valley edge.
        radius = np.hypot(u, v)
        angle = np.mod(np.arctan2(u, -v), 2 * _STAR_HALF_SECTOR)
        angle = np.abs(angle - _STAR_HALF_SECTOR)
        angle = _STAR_HALF_SECTOR - angle  # 0 at the tip, π/5 at the valley
        x, y = radius * np.cos(angle), radius * np.sin(angle)
        return (x - _STAR_TIP[0]) * _STAR_NORMAL[0] + (y - _STAR_TIP[1]) * _STAR_NORMAL[1]
    raise ValueError(f"Unknown shape {shape!r}.")


def _coverage(shape, height, width, centre_y, centre_x, radius, angle):
    """Anti-aliased coverage in [0, 1] over the shape's window of the image.

    Returns (coverage, (top, left)); the window is the square around the shape's
    circumscribed circle, clipped to the image."""
    top, left = max(int(centre_y - radius) - 1, 0), max(int(centre_x - radius) - 1, 0)
    bottom = min(int(math.ceil(centre_y + radius)) + 2, height)
    right = min(int(math.ceil(centre_x + radius)) + 2, width)
    ys = (np.arange(top, bottom, dtype=np.float32) + 0.5 - centre_y) / radius
    xs = (np.arange(left, right, dtype=np.float32) + 0.5 - centre_x) / radius
    cos, sin = math.cos(angle), math.sin(angle)
    u = cos * xs[None, :] + sin * ys[:, None]
    v = -sin * xs[None, :] + cos * ys[:, None]
    distance = _signed_distance(shape, u, v) * radius  # in pixels
    return np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32), (top, left)


def _neutral_colour(rng):
    grey = rng.uniform(25, 230)
    return np.clip(grey + rng.uniform(-14, 14, size=3), 0, 255).astype(np.float32)


def _background(rng, kind, height, width):
    if kind == "plain":
        return np.broadcast_to(_neutral_colour(rng), (height, width, 3)).copy()
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * math.pi)
    along = math.cos(angle) * xs + math.sin(angle) * ys
    if kind == "gradient":
        first, second = _neutral_colour(rng), _neutral_colour(rng)
        t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        return first + t[..., None] * (second - first)
    if kind == "stripes":
        first, second = _neutral_colour(rng), _neutral_colour(rng)
        period = rng.uniform(6, 20)
        t = 0.5 + 0.5 * np.clip(3.0 * np.sin(2 * math.pi * along / period), -1, 1)
        return first + t[..., None] * (second - first)
    if kind == "noise":
        base = _neutral_colour(rng)
        sigma = rng.uniform(10, 28)
        grain = rng.normal(0, sigma, size=(height, width, 1)).astype(np.float32)
        tint = rng.normal(0, sigma / 3, size=(height, width, 3)).astype(np.float32)
        return base + grain + tint
    raise ValueError(f"Unknown background {kind!r}.")


_ROTATION = {  # maximum rotation (radians) that keeps each shape recognisable
    "circle": 0.0, "ring": 0.0, "square": math.radians(25), "cross": math.radians(25),
    "triangle": math.pi, "star": math.pi,
}


def _render_example(rng, english_fraction):
    height, width = (int(s) for s in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    short = min(height, width)
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    image = _background(rng, background, height, width)

    count = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    classes = [int(c) for c in rng.choice(NUM_CLASSES, size=count, replace=False)]
    placed = []  # (class, centre_y, centre_x, circumradius)
    for k, cls in enumerate(classes):
        # Sizes are drawn as the radius of a disc of equal area, so that the main
        # object has at least ~1.8x the area of any other whatever the shapes.
        if k == 0:
            equal_area_radius = rng.uniform(0.20, 0.30) * short
        else:
            equal_area_radius = max(rng.uniform(0.09, 0.15) * short, 4.5)
        shape = SHAPES[cls % len(SHAPES)]
        radius = equal_area_radius * math.sqrt(math.pi / _UNIT_AREA[shape])
        radius = min(radius, 0.48 * short)
        for _ in range(30):
            cy = rng.uniform(radius, height - radius)
            cx = rng.uniform(radius, width - radius)
            if all(math.hypot(cy - py, cx - px) > radius + pr + 2 for _, py, px, pr in placed):
                placed.append((cls, cy, cx, radius))
                break

    mask = np.zeros((height, width), np.uint8)
    boxes, labels = [], []
    for cls, cy, cx, radius in placed:
        colour, shape = class_colour_shape(cls)
        rgb = np.clip(np.array(_COLOUR_RGB[colour], np.float32) + rng.uniform(-20, 20, 3), 0, 255)
        angle = rng.uniform(-_ROTATION[shape], _ROTATION[shape])
        alpha, (top, left) = _coverage(shape, height, width, cy, cx, radius, angle)
        h, w = alpha.shape
        window = image[top:top + h, left:left + w]
        window += alpha[..., None] * (rgb - window)
        inside = alpha >= 0.5
        mask[top:top + h, left:left + w][inside] = cls + 1
        rows, cols = np.nonzero(inside)
        boxes.append(((top + rows.min()) / height, (left + cols.min()) / width,
                      (top + rows.max() + 1) / height, (left + cols.max() + 1) / width))
        labels.append(cls)

    others = [lang for lang in LANGUAGES if lang != "en"]
    language = "en" if rng.random() < english_fraction else others[rng.integers(len(others))]
    template = int(rng.integers(NUM_TEMPLATES))
    objects = [class_colour_shape(c) for c in labels]
    return {
        "image": np.clip(np.rint(image), 0, 255).astype(np.uint8),
        "mask": mask,
        "label": labels[0],
        "caption": caption(objects, background, language, template),
        "language": language,
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "region_texts": [region_text(c, s, language) for c, s in objects],
        "region_labels": np.asarray(labels, np.int32),
    }


def _split_index(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")
    return SPLITS.index(split)


def make_demo_example(index, seed=0, split="train", english_fraction=0.6):
    """Example `index` of the demo dataset for `(seed, split)` (see the module doc)."""
    rng = np.random.default_rng([int(seed), _split_index(split), int(index)])
    return _render_example(rng, english_fraction)


def make_demo_examples(num_examples, seed=0, split="train", english_fraction=0.6):
    """The first `num_examples` demo examples for `(seed, split)`, as a list of dicts.

    Args:
        num_examples: how many.
        seed: any non-negative int; different seeds give different datasets.
        split: "train", "test" or "validation" (disjoint random streams).
        english_fraction: probability of an English caption; the other captions are
            spread evenly over German, French, Russian and Japanese.
    """
    _split_index(split)
    return [make_demo_example(i, seed, split, english_fraction) for i in range(int(num_examples))]


def demo_dataset(num_examples, seed=0, split="train", english_fraction=0.6):
    """`tf.data.Dataset` of the raw demo examples (generated lazily, same order and
    content as `make_demo_examples`). Element: a dict of
    `image` uint8 (H, W, 3), `mask` uint8 (H, W), `label` int32 (), `caption` string,
    `language` string, `boxes` float32 (R, 4), `region_texts` string (R,),
    `region_labels` int32 (R,). Images have their own sizes: `.cache()` it, resize or
    convert before batching."""
    import tensorflow as tf

    _split_index(split)
    signature = {
        "image": tf.TensorSpec((None, None, 3), tf.uint8),
        "mask": tf.TensorSpec((None, None), tf.uint8),
        "label": tf.TensorSpec((), tf.int32),
        "caption": tf.TensorSpec((), tf.string),
        "language": tf.TensorSpec((), tf.string),
        "boxes": tf.TensorSpec((None, 4), tf.float32),
        "region_texts": tf.TensorSpec((None,), tf.string),
        "region_labels": tf.TensorSpec((None,), tf.int32),
    }

    def generate():
        for index in range(int(num_examples)):
            example = make_demo_example(index, seed, split, english_fraction)
            example["label"] = np.int32(example["label"])
            example["region_texts"] = np.array(
                [t.encode("utf-8") for t in example["region_texts"]], dtype=object
            )
            yield example

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(int(num_examples)))
