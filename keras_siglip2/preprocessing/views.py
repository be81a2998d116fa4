"""Extra views for self-distillation and masked prediction (tf.data graph code).

- `local_crops`: V random-resized crops of one image (Inception-style: area
  fraction from `scale`, aspect ratio log-uniform in `ratio`), bilinear-resized
  to `size × size` and mapped to [-1, 1], as DINO's local views.
- `patch_drop_mask`: exactly ⌊ratio · n⌋ of the n real (non-padding) patches,
  chosen uniformly, for the masked-prediction student view.

Both are stateless: the same seed gives the same views on every run.
"""

import tensorflow as tf


def local_crops(image, count, size, seed, scale=(0.05, 0.4), ratio=(3 / 4, 4 / 3)):
    """`image (H, W, 3)` (any numeric dtype, values on [0, 255]) →
    `(count, size, size, 3)` float32 on [-1, 1]. `seed`: a stateless seed `(2,)`."""
    image = tf.cast(image, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    area = tf.random.stateless_uniform((count,), seeds[0], scale[0], scale[1])
    log_ratio = tf.random.stateless_uniform(
        (count,), seeds[1], tf.math.log(ratio[0]), tf.math.log(ratio[1])
    )
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    aspect = tf.exp(log_ratio) * shape[0] / shape[1]  # crop w/h in pixels → in box units
    # Box sides as fractions of the image: height·width = area, width/height = aspect.
    box_h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    box_w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    offsets = tf.random.stateless_uniform((count, 2), seeds[2])
    top = offsets[:, 0] * (1.0 - box_h)
    left = offsets[:, 1] * (1.0 - box_w)
    boxes = tf.stack([top, left, top + box_h, left + box_w], axis=1)
    crops = tf.image.crop_and_resize(
        image[None], boxes, tf.zeros((count,), tf.int32), (size, size), method="bilinear"
    )
    return tf.ensure_shape(crops / 127.5 - 1.0, (count, size, size, 3))


def patch_drop_mask(patch_mask, seed, ratio=0.5):
    """`patch_mask (N,)` bool (True = real patch) → `(N,)` bool with exactly
    ⌊ratio · n_real⌋ real patches set, uniformly at random; padding is never set."""
    patch_mask = tf.cast(patch_mask, tf.bool)
    scores = tf.random.stateless_uniform(tf.shape(patch_mask), tf.cast(seed, tf.int64))
    scores = tf.where(patch_mask, scores, 2.0)  # padding sorts last
    ranks = tf.argsort(tf.argsort(scores))
    real = tf.reduce_sum(tf.cast(patch_mask, tf.float32))
    count = tf.cast(tf.floor(real * ratio), tf.int32)
    return ranks < count
