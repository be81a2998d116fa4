"""Datasets: readers of image–text data, the training pipeline, and the procedural
demo dataset (`demo_shapes`, with `demo_captions` and `demo_vocabulary`)."""

from keras_siglip2.data.demo_shapes import BACKGROUNDS
from keras_siglip2.data.demo_shapes import COLOURS
from keras_siglip2.data.demo_shapes import LANGUAGES
from keras_siglip2.data.demo_shapes import NUM_CLASSES
from keras_siglip2.data.demo_shapes import SHAPES
from keras_siglip2.data.demo_shapes import demo_caption_corpus
from keras_siglip2.data.demo_shapes import demo_class_names
from keras_siglip2.data.demo_shapes import demo_dataset
from keras_siglip2.data.demo_shapes import make_demo_example
from keras_siglip2.data.demo_shapes import make_demo_examples
from keras_siglip2.data.demo_vocabulary import demo_vocabulary_path
from keras_siglip2.data.demo_vocabulary import train_demo_vocabulary
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.data.sources import SkippedRecords
from keras_siglip2.data.sources import from_arrays
from keras_siglip2.data.sources import from_csv
from keras_siglip2.data.sources import from_directory
from keras_siglip2.data.sources import from_jsonl
from keras_siglip2.data.sources import from_records
from keras_siglip2.data.sources import from_tfrecord
from keras_siglip2.data.sources import image_text_source
from keras_siglip2.data.sources import write_tfrecord

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "LANGUAGES",
    "NUM_CLASSES",
    "SHAPES",
    "demo_caption_corpus",
    "demo_class_names",
    "demo_dataset",
    "make_demo_example",
    "make_demo_examples",
    "demo_vocabulary_path",
    "train_demo_vocabulary",
    "training_batches",
    "SkippedRecords",
    "from_arrays",
    "from_csv",
    "from_directory",
    "from_jsonl",
    "from_records",
    "from_tfrecord",
    "image_text_source",
    "write_tfrecord",
]
