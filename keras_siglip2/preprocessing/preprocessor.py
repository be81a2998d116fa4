"""SigLIP2Preprocessor: raw `{"images", "texts"}` → SigLIP 2 model inputs."""

import keras
from keras_hub.models import Preprocessor

from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.preprocessing.image_converter import SigLIP2ImageConverter
from keras_siglip2.preprocessing.tokenizer import SigLIP2Tokenizer

_KEYS = ("images", "texts")


@keras.saving.register_keras_serializable(package="keras_siglip2")
class SigLIP2Preprocessor(Preprocessor):
    """Tokenizer + image converter for `SigLIP2Backbone` inputs.

    Maps `{"images": ..., "texts": ...}` (either key may be absent) to the
    backbone's input dict: `images` (fixed resolution) or `patches`,
    `patch_mask`, `spatial_shapes` (NaFlex) from the image converter, and
    `token_ids` from the tokenizer. Works eagerly (backend tensors out) and
    in `tf.data` (`dataset.map(preprocessor)`, also on `(x, y)` or
    `(x, y, sample_weight)` elements: `y` and `sample_weight` pass through).

    Args:
        tokenizer: a `SigLIP2Tokenizer`, or `None` for image-only use.
        image_converter: a `SigLIP2ImageConverter` or `NaFlexImageConverter`,
            or `None` for text-only use.

    Example:
    ```python
    preprocessor = SigLIP2Preprocessor(tokenizer, NaFlexImageConverter(16))
    inputs = preprocessor({"images": [img1, img2], "texts": ["a cat", "a dog"]})
    outputs = backbone(inputs)
    ```
    """

    backbone_cls = SigLIP2Backbone
    tokenizer_cls = SigLIP2Tokenizer
    # A preset's image_converter.json decides the class (fixed or NaFlex).
    image_converter_cls = SigLIP2ImageConverter

    def __init__(self, tokenizer=None, image_converter=None, **kwargs):
        super().__init__(**kwargs)
        if tokenizer is None and image_converter is None:
            raise ValueError("SigLIP2Preprocessor needs a tokenizer, an image converter or both.")
        self.tokenizer = tokenizer
        self.image_converter = image_converter

    def build(self, input_shape=None):
        # Nothing to build: the tokenizer and converters hold no weights.
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        if not isinstance(x, dict):
            raise TypeError(
                "SigLIP2Preprocessor takes a dict with keys 'images' and/or 'texts'; "
                f"got {type(x).__name__}."
            )
        unknown = sorted(set(x) - set(_KEYS))
        if unknown or not set(x) & set(_KEYS):
            raise ValueError(
                "SigLIP2Preprocessor takes a dict with keys 'images' and/or 'texts'; "
                f"got keys {sorted(x)}."
            )
        outputs = {}
        if "images" in x:
            if self.image_converter is None:
                raise ValueError("Got 'images' but this preprocessor has no image converter.")
            images = self.image_converter(x["images"])
            if isinstance(images, dict):
                outputs.update(images)
            else:
                outputs["images"] = images
        if "texts" in x:
            if self.tokenizer is None:
                raise ValueError("Got 'texts' but this preprocessor has no tokenizer.")
            outputs["token_ids"] = self.tokenizer(x["texts"])
        return keras.utils.pack_x_y_sample_weight(outputs, y, sample_weight)
