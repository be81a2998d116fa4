"""NaFlex preprocessing throughput (images/s) on real photos: our
`NaFlexImageConverter` in a `tf.data` pipeline (and called eagerly on a list)
against transformers' `Siglip2ImageProcessorPil`, on the same decoded photos.

Photos: the colour photographs scikit-image ships (`skimage.data`: astronaut,
coffee, chelsea, rocket, hubble_deep_field, immunohistochemistry, retina),
each also rotated by 90° (portrait), so the batch mixes aspect ratios from
1:1 to 2:3 and sizes from 300×451 to 1411×1411. Each round processes the
photos `--passes` times over in batches of `--batch`; contestants alternate
round by round (median of `--repeats` rounds after a warm-up round).

Contestants (the same outputs: patches, mask, spatial shapes at N patches):
  ours tf.data    Dataset of uint8 photos → map(converter, AUTOTUNE) → batch → prefetch
  ours eager      converter(list of arrays), one call per batch
  transformers    Siglip2ImageProcessorPil(images=list of PIL images, return_tensors="np")

Transformers' fast `Siglip2ImageProcessor` needs torchvision, which has no
build matching the local torch wheel here, so it is not run.

Usage: python benchmarks/naflex_preprocessing.py [--patches 256] [--batch 8]
       [--passes 4] [--repeats 5]
"""

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", type=int, default=256, help="NaFlex sequence length N")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--passes", type=int, default=4, help="passes over the photos per round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def photos(count=len(PHOTOS)):
    """The scikit-image colour photos, each as shipped and rotated by 90°: uint8 (H, W, 3)."""
    import skimage.data

    out = []
    for name in PHOTOS[:count]:
        image = getattr(skimage.data, name)()[..., :3]
        out += [image, np.ascontiguousarray(np.rot90(image))]
    return out


def tf_data_pipeline(converter, images, args):
    """A `tf.data` pipeline: the photos `passes` times → NaFlex batches."""
    import tensorflow as tf

    flat = tf.ragged.constant([image.reshape(-1) for image in images], dtype=tf.uint8)
    shapes = tf.constant([image.shape for image in images], tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((flat, shapes)).repeat(args.passes)
    dataset = dataset.map(lambda pixels, shape: tf.reshape(pixels, shape))
    dataset = dataset.map(converter, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(args.batch).prefetch(tf.data.AUTOTUNE)


def run(args):
    """`{contestant: [seconds per round]}` and the number of images per round."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    common.set_threads()
    from PIL import Image
    from transformers import Siglip2ImageProcessorPil

    from keras_siglip2.preprocessing.image_converter import NaFlexImageConverter

    images = photos(args.photos)
    converter = NaFlexImageConverter(16, args.patches)
    reference = Siglip2ImageProcessorPil(patch_size=16, max_num_patches=args.patches)
    pil_images = [Image.fromarray(image) for image in images]
    dataset = tf_data_pipeline(converter, images, args)
    stream = images * args.passes
    pil_stream = pil_images * args.passes
    batches = range(0, len(stream), args.batch)

    def ours_tf_data():
        for batch in dataset:
            batch["patches"].numpy()

    def ours_eager():
        for start in batches:
            converter(stream[start:start + args.batch])

    def transformers_pil():
        for start in batches:
            reference(images=pil_stream[start:start + args.batch], return_tensors="np")

    check = next(iter(dataset))
    expected = reference(images=pil_images[: args.batch], return_tensors="np")
    same_shapes = bool(np.array_equal(check["spatial_shapes"].numpy(), expected["spatial_shapes"]))
    fns = {"ours tf.data": ours_tf_data, "ours eager": ours_eager,
           "transformers (PIL)": transformers_pil}
    return common.interleaved(fns, args.repeats, warmup=1), len(stream), same_shapes


COLUMNS = [("model", "model", ""), ("seconds", "round s", ".3f"),
           ("throughput", "images/s", ".1f"), ("ratio", "vs transformers (PIL)", ".2f")]


def main(argv=None):
    args = parse(argv)
    times, count, same_shapes = run(args)
    rows = [{"model": name, "seconds": statistics.median(t),
             "throughput": statistics.median(count / x for x in t),
             "ratio": common.median_ratio(times["transformers (PIL)"], t)}
            for name, t in times.items()]
    print(f"NaFlex preprocessing, {count} images per round ({args.photos * 2} scikit-image "
          f"photos × {args.passes}), N={args.patches}, batch {args.batch}; median of "
          f"{args.repeats} interleaved rounds. Same spatial shapes as transformers: {same_shapes}.")
    print()
    print(common.format_table(rows, COLUMNS))


if __name__ == "__main__":
    main()
