"""Raw image–text examples → batches the `SigLIP2` model trains on.

Per example: image preprocessing (fixed-res or NaFlex), caption tokens for the
sigmoid loss, and the three LocCa decoder sequences
(`preprocessing.locca_sequences` documents their layout).
"""

import tensorflow as tf

from keras_siglip2.preprocessing.locca_sequences import locca_sequences


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
    """
    locca = model.locca if locca is None else locca
    dataset = raw.enumerate()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    lengths = _sequence_lengths(model, max_num_patches)
    convert = _example_converter(model, seed, lengths, locca, parallel_fraction)
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


def _sequence_lengths(model, max_num_patches):
    converter = model.preprocessor.image_converter
    if not model.backbone.naflex:
        if max_num_patches is not None:
            raise ValueError("`max_num_patches` applies to NaFlex models only.")
        return [None]
    if max_num_patches is None:
        return [converter.max_num_patches]
    if isinstance(max_num_patches, int):
        return [max_num_patches]
    return [int(n) for n in max_num_patches]


def _example_converter(model, seed, lengths, locca, parallel_fraction):
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
        return key, outputs

    return convert
