"""Raw image–text examples → batches the `SigLIP2` model trains on.

Per example: image preprocessing (fixed-res or NaFlex), caption tokens for the
sigmoid loss, the three LocCa decoder sequences
(`preprocessing.locca_sequences` documents their layout) and, for models with
self-distillation, the local crops and the masked-prediction patch mask
(`preprocessing.views`).
"""

import tensorflow as tf

from keras_siglip2.preprocessing.locca_sequences import locca_sequences
from keras_siglip2.preprocessing.views import local_crops, patch_drop_mask


def _example_seed(seed, index, salt):
    return tf.stack([tf.cast(seed, tf.int64) * 7919 + salt, tf.cast(index, tf.int64)])


def training_batches(
    raw,
    model,
    batch_size,
    seed=0,
    shuffle_buffer=2048,
    max_num_patches=None,
    parallel_fraction=0.5,
    locca=None,
    self_supervised=None,
):
    """Batches for `model.fit`.

    Args:
        raw: `tf.data.Dataset` of raw examples (see `data.sources`).
        model: a `SigLIP2` with a preprocessor (tokenizer + image converter).
        batch_size: examples per batch (the remainder is dropped: the sigmoid
            loss wants full batches, and compiled steps want fixed shapes).
        seed: shuffling and per-example choices are deterministic given it.
        max_num_patches: NaFlex only; an int or a list of sequence lengths
            (e.g. `[128, 256, 576, 784, 1024]`); each batch uses one of them,
            chosen per example group, so batches mix lengths across the epoch.
        locca: build decoder sequences (default: whether `model.locca`).
        self_supervised: add `local_images (B, V, r, r, 3)` and
            `patch_drop_mask (B, N)` (default: whether the model has
            self-distillation; sizes from `model.self_supervised`).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}.")
    _check_not_empty(raw)
    locca = model.locca if locca is None else locca
    if self_supervised is None:
        self_supervised = model.self_supervised is not None
    dataset = raw.enumerate()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    lengths = _sequence_lengths(model, max_num_patches)
    convert = _example_converter(model, seed, lengths, locca, parallel_fraction, self_supervised)
    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if len(lengths) > 1:
        dataset = dataset.group_by_window(
            key_func=lambda key, example: tf.cast(key, tf.int64),  # must be int64
            reduce_func=lambda key, group: group.batch(batch_size, drop_remainder=True),
            window_size=batch_size,
        ).map(lambda key, example: example)
    else:
        dataset = dataset.map(lambda key, example: example).batch(
            batch_size, drop_remainder=True
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _check_not_empty(raw):
    """Reads the first example, so a source whose every image was skipped (or
    that holds nothing) fails now, not as a `StopIteration` deep in `fit`."""
    for _ in raw.take(1):
        return
    raise ValueError(
        "The training data holds no usable example: it is empty, or every image was "
        "skipped as missing or undecodable (see the warnings above, one per image). "
        "Check the image paths, which are relative to the data file."
    )


def _sequence_lengths(model, max_num_patches):
    converter = model.preprocessor.image_converter
    if not model.backbone.naflex:
        if max_num_patches is not None:
            raise ValueError("`max_num_patches` applies to NaFlex models only.")
        return [None]
    if max_num_patches is None:
        return [converter.max_num_patches]
    lengths = [max_num_patches] if isinstance(max_num_patches, int) else max_num_patches
    if not isinstance(lengths, (list, tuple)) or not lengths or any(
        isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths
    ):
        raise ValueError(
            "`max_num_patches` must be a positive int or a non-empty list of them; got "
            f"{max_num_patches!r}."
        )
    return list(lengths)


def _example_converter(model, seed, lengths, locca, parallel_fraction, self_supervised):
    tokenizer = model.preprocessor.tokenizer
    converter = model.preprocessor.image_converter
    length = tokenizer.sequence_length
    offset = model.backbone.text_encoder.vocabulary_size

    def convert_image(image, key):
        if lengths == [None]:  # fixed resolution: the converter returns the array
            return {"images": converter(image)}
        branches = [lambda n=n: converter(image, max_num_patches=n) for n in lengths]
        return tf.switch_case(key, branches)

    def convert(index, example):
        key = tf.cast(
            tf.random.stateless_uniform((), _example_seed(seed, index, 1), 0, len(lengths), tf.int32),
            tf.int32,
        )
        outputs = dict(convert_image(example["image"], key))
        outputs["token_ids"] = tf.cast(tokenizer(example["caption"]), tf.int32)
        if locca:
            region_ids = tokenizer(example["region_texts"])
            region_ids = tf.reshape(region_ids, (-1, length))
            count = tf.shape(example["boxes"])[0]
            draw = tf.random.stateless_uniform((), _example_seed(seed, index, 2))
            region_index = tf.cast(draw * tf.cast(count, tf.float32), tf.int32)
            outputs.update(
                locca_sequences(
                    outputs["token_ids"], region_ids, example["boxes"], region_index,
                    length, offset, model.num_coordinate_bins,
                )
            )
            coin = tf.random.stateless_uniform((), _example_seed(seed, index, 3))
            outputs["captioning_parallel"] = coin < parallel_fraction
        if self_supervised:
            outputs.update(self_supervised_views(example["image"], outputs, index))
        return key, outputs

    def self_supervised_views(image, outputs, index):
        settings = model.self_supervised
        real = outputs.get("patch_mask")
        if real is None:  # fixed resolution: every patch is real
            grid = outputs["images"].shape[0] // model.backbone.vision_encoder.patch_size
            real = tf.ones((grid * grid,), tf.bool)
        return {
            "local_images": local_crops(
                image, settings["num_local_views"], settings["local_view_size"],
                _example_seed(seed, index, 4), scale=settings["local_crop_scale"],
            ),
            "patch_drop_mask": patch_drop_mask(
                real, _example_seed(seed, index, 5), settings["mask_ratio"]
            ),
        }

    return convert
