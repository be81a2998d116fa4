"""`siglip2 demo`: train a tiny SigLIP 2 from scratch on the built-in dataset
(`keras_siglip2.data.demo_shapes`), evaluate it on held-out data, and write
metrics, plots and a loadable preset.

Everything is offline and deterministic from `seed`. Interrupt it at any time
and run the same command again: it resumes from the last checkpoint (every
`steps_per_checkpoint` steps) and ends with the same weights.
"""

import csv
import json
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_siglip2 import callbacks
from keras_siglip2.data import demo_shapes, demo_vocabulary_path
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.evaluation import (
    chance_levels,
    class_text_embeddings,
    format_table,
    referring_accuracy,
    retrieval_recall,
    segmentation_miou,
    zero_shot_accuracy,
    zero_shot_predictions,
)
from keras_siglip2.evaluation.dense_probe import dense_probe_miou
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2Preprocessor,
    SigLIP2Tokenizer,
)

DEMO_SEQUENCE_LENGTH = 32
DEMO_COORDINATE_BINS = 32  # 1.5–5 px bins on 48–160 px images: coarse but fast to learn
# Self-distillation / masked prediction at demo size: small heads, 8 local crops
# of 3×3 patches (24 px), a faster teacher for the short self-supervised phase.
DEMO_SELF_SUPERVISED = dict(
    num_prototypes=1024, num_patch_prototypes=256, head_hidden_dim=256,
    head_bottleneck_dim=64, local_view_patches=3, teacher_momentum=0.99,
)
# `siglip2 demo --ablation`: the paper's claims, small (same budget and seed).
ABLATION_VARIANTS = {
    "sigmoid": dict(locca=False, self_supervised=None),
    "sigmoid+locca": dict(locca=True, self_supervised=None),
    "full": dict(locca=True, self_supervised=DEMO_SELF_SUPERVISED),
}


def demo_config(vocabulary_size):
    """The demo architecture: a NaFlex B/16-shaped model at width 96."""
    trunk = dict(hidden_dim=96, num_heads=4, intermediate_dim=384)
    return {
        "vision": dict(
            trunk, num_layers=4, patch_size=8, image_size=None,
            position_grid_size=8, max_num_patches=64,
        ),
        "text": dict(
            trunk, num_layers=3, vocabulary_size=vocabulary_size,
            sequence_length=DEMO_SEQUENCE_LENGTH, projection_dim=96,
        ),
    }


def demo_model(seed=0, locca=True, self_supervised=DEMO_SELF_SUPERVISED, decoder_layers=None):
    """A freshly initialised demo `SigLIP2` with its tokenizer and converter
    (all five losses by default)."""
    keras.utils.set_random_seed(seed)
    tokenizer = SigLIP2Tokenizer(
        proto=str(demo_vocabulary_path()), sequence_length=DEMO_SEQUENCE_LENGTH
    )
    config = demo_config(tokenizer.vocabulary_size())
    preprocessor = SigLIP2Preprocessor(
        tokenizer, NaFlexImageConverter(config["vision"]["patch_size"], 64)
    )
    # b = −log(batch): the prior log-odds of a positive pair at batch 32. The
    # paper's −10 suits 32k batches; at 32 it stalls the first few hundred steps.
    backbone = SigLIP2Backbone(**config, initial_bias=-math.log(32))
    return SigLIP2(
        backbone,
        preprocessor,
        locca=locca,
        decoder_layers=decoder_layers,
        num_coordinate_bins=DEMO_COORDINATE_BINS,
        self_supervised=self_supervised,
    )


def train(model, output_dir, steps, num_train, batch_size, seed, steps_per_checkpoint,
          verbose, learning_rate=3e-3):
    """Fit for exactly `steps` steps on an infinite deterministic stream; resumes
    from `output_dir/checkpoint` (`callbacks.fit_resumably`)."""
    raw = demo_shapes.demo_dataset(num_train, seed=seed, split="train").cache().repeat()
    model.compile(
        learning_rate=learning_rate, warmup_steps=min(100, steps // 10), total_steps=steps
    )
    callbacks.fit_resumably(
        model, lambda: training_batches(raw, model, batch_size, seed=seed),
        output_dir, steps, steps_per_checkpoint, verbose,
    )


def evaluate(model, num_test, seed):
    """Held-out metrics, their chance levels, and per-image predictions."""
    examples = demo_shapes.make_demo_examples(num_test, seed=seed, split="test")
    images = [e["image"] for e in examples]
    labels = np.array([e["label"] for e in examples])
    image_embeddings = model.embed_images(images, verbose=0)
    class_embeddings = class_text_embeddings(
        demo_shapes.demo_class_names("en"), model.embed_texts, templates=("{}",), verbose=0
    )
    text_embeddings = model.embed_texts([e["caption"] for e in examples], verbose=0)
    true_boxes = np.stack([e["boxes"][0] for e in examples])
    mean_box = np.broadcast_to(_mean_training_box(num_test, seed), true_boxes.shape)
    if model.decoder is not None:
        predicted_boxes = model.locate(images, [e["region_texts"][0] for e in examples])
    else:  # no LocCa decoder: the model cannot locate; score the baseline answer
        predicted_boxes = np.array(mean_box)
    metrics = {
        "zero_shot_top1": zero_shot_accuracy(
            image_embeddings, labels, class_embeddings, top_k=(1,)
        )["top1"],
    }
    recall = retrieval_recall(image_embeddings, text_embeddings, np.arange(num_test), ks=(1,))
    metrics.update(
        image_to_text_R1=recall["image_to_text_R@1"],
        text_to_image_R1=recall["text_to_image_R@1"],
        referring_accuracy=referring_accuracy(predicted_boxes, true_boxes),
    )
    metrics.update(dense_probe(model, examples, num_test, seed))
    chance = chance_levels(
        num_classes=demo_shapes.NUM_CLASSES, num_images=num_test, num_texts_per_image=1, ks=(1,),
        top_k=(1,),
    )
    chance_by_metric = {
        "zero_shot_top1": chance["top1"],
        "image_to_text_R1": chance["image_to_text_R@1"],
        "text_to_image_R1": chance["text_to_image_R@1"],
        # "Chance" for boxes: always answering the average training box.
        "referring_accuracy": referring_accuracy(mean_box, true_boxes),
        # A probe that always answers the most common patch label (background).
        "dense_probe_miou": _majority_miou(examples),
    }
    predictions = {
        "examples": examples,
        "classes": zero_shot_predictions(image_embeddings, class_embeddings),
        "boxes": predicted_boxes,
    }
    return metrics, chance_by_metric, predictions


def _mean_training_box(count, seed):
    boxes = [e["boxes"][0] for e in demo_shapes.make_demo_examples(count, seed=seed, split="train")]
    return np.stack(boxes).mean(0)


def dense_probe(model, test_examples, count, seed):
    """Linear per-patch segmentation probe (background + 36 classes) on frozen
    patch features: fit on `count` training images, mIoU on the test images."""
    train_examples = demo_shapes.make_demo_examples(count, seed=seed, split="train")

    def features(examples):
        return model.patch_features([e["image"] for e in examples])

    scores = dense_probe_miou(
        features(train_examples), [e["mask"] for e in train_examples],
        features(test_examples), [e["mask"] for e in test_examples],
        num_classes=demo_shapes.NUM_CLASSES + 1,
    )
    return {"dense_probe_miou": scores["dense_probe_miou"]}


def _majority_miou(examples):
    labels = np.concatenate([np.ravel(e["mask"]) for e in examples])
    return segmentation_miou(np.zeros_like(labels), labels, demo_shapes.NUM_CLASSES + 1)


def plot_history(history_csv, path):
    """Loss curves from the CSV log, one line per loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    figure, axis = plt.subplots(figsize=(7, 4))
    for key in (
        "loss", "sigmoid_loss", "captioning_loss", "localization_loss",
        "self_distillation_loss", "masked_prediction_loss",
    ):
        if rows and key in rows[0]:
            axis.plot([int(r["epoch"]) + 1 for r in rows], [float(r[key]) for r in rows], label=key)
    axis.set_xlabel("checkpoint interval")
    axis.set_ylabel("training loss")
    axis.set_yscale("log")
    axis.legend()
    axis.set_title("SigLIP 2 demo: training losses")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_predictions(predictions, path, count=8):
    """Test images with the zero-shot class and the located main object."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = demo_shapes.demo_class_names("en")
    figure, axes = plt.subplots(2, count // 2, figsize=(2.6 * count // 2, 6))
    for axis, example, predicted, box in zip(
        axes.flat, predictions["examples"], predictions["classes"], predictions["boxes"]
    ):
        height, width = example["image"].shape[:2]
        axis.imshow(example["image"])
        for (y0, x0, y1, x1), colour in ((example["boxes"][0], "lime"), (box, "red")):
            axis.add_patch(
                plt.Rectangle(
                    (x0 * width, y0 * height), (x1 - x0) * width, (y1 - y0) * height,
                    fill=False, edgecolor=colour, linewidth=2,
                )
            )
        ok = "✓" if predicted == example["label"] else "✗"
        axis.set_title(f"{ok} {names[predicted]}\n(true: {names[example['label']]})", fontsize=8)
        axis.axis("off")
    figure.suptitle("zero-shot class; box for the main object: green true, red predicted")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_demo(
    output_dir="siglip2_demo",
    steps=900,
    num_train=6000,
    num_test=360,
    batch_size=32,
    seed=0,
    steps_per_checkpoint=25,
    learning_rate=3e-3,
    verbose="auto",
    variant="full",
):
    """Train, evaluate and save; returns the metrics dict (also `metrics.json`).
    `variant`: a key of `ABLATION_VARIANTS` (default all five losses)."""
    for name, value in (
        ("steps", steps), ("num_train", num_train), ("num_test", num_test),
        ("batch_size", batch_size), ("steps_per_checkpoint", steps_per_checkpoint),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` (--{name.replace('_', '-')}) must be a positive integer; got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` (--seed) must be an integer ≥ 0; got {seed!r}.")
    if variant not in ABLATION_VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(ABLATION_VARIANTS)}; got {variant!r}.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if verbose == "auto":  # a live progress bar on a terminal, a line per interval in logs
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.time()
    model = demo_model(seed, **ABLATION_VARIANTS[variant])
    print(
        f"Training a {model.count_params():,}-parameter SigLIP 2 (NaFlex, losses: {variant}) "
        f"on the demo dataset for {steps} steps of {batch_size}, backend "
        f"{keras.backend.backend()}."
    )
    built = time.time()
    train(
        model, output_dir, steps, num_train, batch_size, seed, steps_per_checkpoint,
        verbose, learning_rate,
    )
    trained = time.time()
    metrics, chance, predictions = evaluate(model, num_test, seed)
    print(format_table(metrics, chance, title=f"Held-out metrics ({num_test} test images)"))
    seconds = {"build": built - start, "train": trained - built, "evaluate": time.time() - trained}
    total = sum(seconds.values())
    print("Seconds: " + ", ".join(f"{phase} {value:.1f}" for phase, value in seconds.items())
          + f", in all {total:.1f}.")
    report = {
        "metrics": metrics,
        "chance": chance,
        "backend": keras.backend.backend(),
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "variant": variant,
        "seconds": round(total, 1),
        "phase_seconds": {phase: round(value, 1) for phase, value in seconds.items()},
    }
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    plot_history(output_dir / "history.csv", output_dir / "loss_curves.png")
    plot_predictions(predictions, output_dir / "predictions.png")
    model.save_to_preset(output_dir / "preset")
    print(
        f"Wrote {output_dir}/metrics.json, loss_curves.png, predictions.png and the "
        f"preset {output_dir}/preset (load it with SigLIP2.from_preset)."
    )
    return report


def run_ablation(output_dir="siglip2_ablation", **demo_options):
    """Train the demo model once per `ABLATION_VARIANTS` entry (same budget and
    seed), then write `ablation.json` and `ablation.png` comparing them."""
    output_dir = Path(output_dir)
    reports = {
        variant: run_demo(output_dir=output_dir / variant, variant=variant, **demo_options)
        for variant in ABLATION_VARIANTS
    }
    chance = next(iter(reports.values()))["chance"]
    table = {variant: report["metrics"] for variant, report in reports.items()}
    (output_dir / "ablation.json").write_text(
        json.dumps({"metrics": table, "chance": chance}, indent=2)
    )
    names = list(chance)
    header = f"{'variant':<16}" + "".join(f"{n:>20}" for n in names)
    rows = [f"{v:<16}" + "".join(f"{m[n]:>20.3f}" for n in names) for v, m in table.items()]
    rows.append(f"{'chance':<16}" + "".join(f"{chance[n]:>20.3f}" for n in names))
    print("\n".join(["Ablation (held-out)", header, *rows]))
    plot_ablation(table, chance, output_dir / "ablation.png")
    return table


def plot_ablation(table, chance, path):
    """Grouped bars: one group per metric, one bar per variant, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(chance)
    width = 0.8 / len(table)
    figure, axis = plt.subplots(figsize=(9, 4))
    for i, (variant, metrics) in enumerate(table.items()):
        positions = np.arange(len(names)) + i * width
        axis.bar(positions, [metrics[n] for n in names], width, label=variant)
    for j, name in enumerate(names):
        axis.hlines(chance[name], j - width / 2, j + 0.8 - width / 2, colors="k", linestyles="--")
    axis.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, fontsize=8)
    axis.set_ylabel("held-out score (dashed: chance)")
    axis.legend()
    axis.set_title("SigLIP 2 demo ablation: which losses help what")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
