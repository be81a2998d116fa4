"""LocCa decoder sequences: captioning, referring expression, grounded captioning.

Sequence layout (ids: BOS = 2, EOS = 1, boxes as four coordinate tokens, see
`preprocessing.boxes`):

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

import numpy as np
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


def referring_prompt(token_ids, length):
    """Tokenised region texts `(N, L)` → decoder inputs `[BOS] text [EOS]` padded
    to `length` (NumPy int32) and the index of that EOS per row, from where the
    four box tokens are decoded."""
    token_ids = np.asarray(token_ids)
    prompts = np.zeros((len(token_ids), length), np.int32)
    positions = np.zeros(len(token_ids), np.int64)
    for row, ids in enumerate(token_ids):
        text = ids[ids != PAD_ID][:-1][: length - 6]
        prompts[row, : len(text) + 2] = [BOS_ID, *text, EOS_ID]
        positions[row] = len(text) + 1
    return prompts, positions
