"""keras_siglip2: SigLIP 2 vision-language encoders for Keras 3."""

from keras_siglip2 import configs
from keras_siglip2 import data
from keras_siglip2 import evaluation
from keras_siglip2 import losses
from keras_siglip2 import preprocessing
from keras_siglip2.configs import list_presets
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from keras_siglip2.models.text_encoder import SigLIP2TextEncoder
from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder

__version__ = "0.1.0"
