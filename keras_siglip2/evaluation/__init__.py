"""Evaluation: zero-shot classification, retrieval recall@k, localisation and
segmentation metrics, result tables (pure NumPy on embeddings; no model
imports), and end-to-end runs of a model on a folder, file or `tf.data` dataset
(`evaluate_zero_shot`, `evaluate_retrieval`)."""

from keras_siglip2.evaluation.data import classification_data
from keras_siglip2.evaluation.data import retrieval_data
from keras_siglip2.evaluation.evaluate import evaluate_retrieval
from keras_siglip2.evaluation.evaluate import evaluate_zero_shot
from keras_siglip2.evaluation.evaluate import format_results
from keras_siglip2.evaluation.localization import referring_accuracy
from keras_siglip2.evaluation.localization import segmentation_confusion
from keras_siglip2.evaluation.localization import segmentation_miou
from keras_siglip2.evaluation.report import chance_levels
from keras_siglip2.evaluation.report import format_table
from keras_siglip2.evaluation.retrieval import retrieval_recall
from keras_siglip2.evaluation.retrieval import top_k_neighbours
from keras_siglip2.evaluation.templates import IMAGENET_TEMPLATES
from keras_siglip2.evaluation.templates import IMAGENET_TEMPLATES_WITH_PLAIN
from keras_siglip2.evaluation.templates import resolve_templates
from keras_siglip2.evaluation.zero_shot import class_prompts
from keras_siglip2.evaluation.zero_shot import class_text_embeddings
from keras_siglip2.evaluation.zero_shot import zero_shot_accuracy
from keras_siglip2.evaluation.zero_shot import zero_shot_predictions
from keras_siglip2.evaluation.zero_shot import zero_shot_probabilities
from keras_siglip2.evaluation.zero_shot import zero_shot_similarities

__all__ = [
    "IMAGENET_TEMPLATES",
    "IMAGENET_TEMPLATES_WITH_PLAIN",
    "chance_levels",
    "class_prompts",
    "class_text_embeddings",
    "classification_data",
    "evaluate_retrieval",
    "evaluate_zero_shot",
    "format_results",
    "format_table",
    "referring_accuracy",
    "resolve_templates",
    "retrieval_data",
    "retrieval_recall",
    "segmentation_confusion",
    "segmentation_miou",
    "top_k_neighbours",
    "zero_shot_accuracy",
    "zero_shot_predictions",
    "zero_shot_probabilities",
    "zero_shot_similarities",
]
