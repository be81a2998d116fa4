"""Raw image–text examples → batches the `SigLIP2` model trains on.

Per example: image preprocessing (fixed-res or NaFlex), caption tokens for the
sigmoid loss, and the three LocCa decoder sequences. Sequence layout (ids;
BOS = 2, EOS = 1, boxes as four coordinate tokens, see `preprocessing.boxes`):

    captioning  [BOS] caption [EOS]                  loss on caption + EOS
    referring   [BOS] region_text [EOS] box [EOS]    loss on box + EOS
    grounded    [BOS] box region_text [EOS]          loss on region_text + EOS

`{task}_inputs` is the sequence without its last token, `{task}_targets` the
sequence shifted by one, `{task}_weights` 1 where the loss counts; all right-
padded with 0 to the text length. One region per example is drawn for the two
localisation tasks; examples without regions get zero weights there.
`captioning_parallel` marks the examples (probability `parallel_fraction`)
whose caption is predicted in parallel from mask inputs.
"""

import tensorflow as tf

from keras_siglip2.preprocessing.boxes import boxes_to_tokens

BOS_ID, EOS_ID, PAD_ID = 2, 1, 0


def _content(token_ids):
    """Padded ids with EOS → the tokens before EOS (1-D, dynamic length)."""
    tokens = tf.boolean_mask(token_ids, token_ids != PAD_ID)
    return tokens[:-1]


def _teacher_forcing(sequence, first_scored, length):
    """Full sequence → padded (inputs, targets, weights) of `length`."""
    inputs, targets = sequence[:-1], sequence[1:]
    count = tf.shape(targets)[0]
    weights = tf.cast(tf.range(count) >= first_scored, tf.float32)

    def pad(x):
        x = tf.pad(x, [[0, length - tf.shape(x)[0]]])
        return tf.ensure_shape(x, (length,))

    return pad(inputs), pad(targets), pad(weights)


def locca_sequences(caption_ids, region_ids, boxes, region_index, length,
                    coordinate_offset, num_bins):
    """Decoder inputs/targets/weights for the three LocCa tasks of one example.

    Args: `caption_ids (L,)` and `region_ids (R, L)` tokenizer outputs,
    `boxes (R, 4)`, `region_index` scalar (ignored when R = 0).
    """
    bos, eos = tf.constant([BOS_ID], tf.int32), tf.constant([EOS_ID], tf.int32)
    outputs = {}
    caption = _content(tf.cast(caption_ids, tf.int32))
    sequence = tf.concat([bos, caption, eos], 0)
    outputs["captioning"] = _teacher_forcing(sequence, 0, length)

    has_region = tf.shape(boxes)[0] > 0
    safe = tf.minimum(region_index, tf.maximum(tf.shape(boxes)[0] - 1, 0))
    region_boxes = tf.concat([boxes, tf.zeros((1, 4), boxes.dtype)], 0)
    region_tokens = tf.concat([region_ids, tf.zeros((1, length), region_ids.dtype)], 0)
    box = tf.cast(boxes_to_tokens(region_boxes[safe], coordinate_offset, num_bins), tf.int32)
    text = _content(tf.cast(region_tokens[safe], tf.int32))

    referring_text = text[: length - 6]
    sequence = tf.concat([bos, referring_text, eos, box, eos], 0)
    outputs["referring"] = _teacher_forcing(sequence, tf.shape(referring_text)[0] + 1, length)
    grounded_text = text[: length - 5]
    sequence = tf.concat([bos, box, grounded_text, eos], 0)
    outputs["grounded"] = _teacher_forcing(sequence, 4, length)

    batch = {}
    for task, (inputs, targets, weights) in outputs.items():
        if task != "captioning":
            weights = weights * tf.cast(has_region, tf.float32)
        batch[f"{task}_inputs"] = inputs
        batch[f"{task}_targets"] = targets
        batch[f"{task}_weights"] = weights
    return batch


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
            key_func=lambda key, example: key,
            reduce_func=lambda key, group: group.batch(batch_size, drop_remainder=True),
            window_size=batch_size,
        )
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
        if lengths == [None]:
            return converter(image)
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
