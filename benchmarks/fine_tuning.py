"""Adapting a checkpoint: full fine-tuning against LoRA and LiT (frozen text
tower), and quantized inference, on the demo preset.

    python benchmarks/fine_tuning.py adapt --preset siglip2_demo/preset --steps 300 --seeds 0 1 2
    python benchmarks/fine_tuning.py quantize --preset siglip2_demo/preset

`adapt`: from the preset, `--steps` more steps of the sigmoid loss on the
demo's training split (each seed draws another order), then held-out
zero-shot top-1 on `demo:360` (plain template) — per method: trainable
parameters, median step time and accuracy (mean and spread over seeds).
Learning rates: full and LiT 1e-4 (`recipe="fine_tuning"` with a rate for a
short run), LoRA 1e-3 (factors start at zero and need a larger step).

`quantize`: for float32, int8, int4 and float8 towers, the cosine similarity
of image and text embeddings to float32 (held-out images, their captions),
zero-shot top-1 accuracy and argmax agreement with float32 (with the median
gap between float32's two best class logits: where it is tiny, agreement
measures near-ties, not quantization error), weight memory, and CPU latency
of one image batch (interleaved rounds, median ratio to float32).
"""

import argparse
import os
import statistics
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, interleaved, median_ratio  # noqa: E402

METHODS = {
    "full": dict(learning_rate=1e-4),
    "lora": dict(learning_rate=1e-3, rank=8),
    "lit": dict(learning_rate=1e-4),
}
QUANTIZATION_MODES = (None, "int8", "int4", "float8")


def load(preset):
    """The preset as a sigmoid-only `SigLIP2` (no decoder, no self-supervision)."""
    from keras_siglip2 import SigLIP2

    return SigLIP2.from_preset(preset, locca=False, self_supervised=None)


def adapt(preset, method, steps, seed, batch_size=32, num_train=2000):
    """`(zero-shot top-1, trainable parameters, median step seconds)` after
    fine-tuning `preset` with `method` for `steps` steps."""
    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches
    from keras_siglip2.evaluation import evaluate_zero_shot

    keras.utils.set_random_seed(seed)
    model = load(preset)
    settings = METHODS[method]
    if method == "lora":
        model.backbone.enable_lora(settings["rank"])
    elif method == "lit":
        model.backbone.text_encoder.trainable = False
    model.compile(recipe="fine_tuning", learning_rate=settings["learning_rate"],
                  warmup_steps=steps // 10, total_steps=steps)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    raw = demo_dataset(num_train, seed=100 + seed, split="train").cache().repeat()
    batches = training_batches(raw, model, batch_size, seed=seed)
    times = StepTimes()
    model.fit(batches, steps_per_epoch=steps, epochs=1, callbacks=[times], verbose=0)
    result = evaluate_zero_shot(model, "demo:360", templates="plain", top_k=(1,), verbose=0)
    return result["metrics"]["top1"], trainable, statistics.median(times.seconds[1:])


class StepTimes(keras.callbacks.Callback):
    """Seconds of each training step."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def weight_bytes(model):
    """Bytes of the towers' variables as stored (int8 kernels count 1 byte)."""
    return sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.backbone.weights
    )


def quantize(preset, num_images=120, repeats=5):
    """One row per mode: cosines, argmax agreement, memory, latency ratio."""
    from keras_siglip2.data import demo_class_names, make_demo_examples

    examples = make_demo_examples(num_images, split="test")
    labels = np.array([e["label"] for e in examples])
    images = [e["image"] for e in examples]
    captions = [e["caption"] for e in examples]
    classes = demo_class_names("en")
    models, results = {}, {}
    for mode in QUANTIZATION_MODES:
        model = load(preset)
        if mode:
            model.backbone.quantize(mode)
        models[mode] = model
        results[mode] = dict(
            images=model.embed_images(images, verbose=0),
            texts=model.embed_texts(captions, verbose=0),
            probabilities=model.zero_shot(images, classes),
            memory=weight_bytes(model),
        )
    batch = images[:32]
    times = interleaved(
        {mode: (lambda m=m: m.embed_images(batch, verbose=0)) for mode, m in models.items()},
        repeats,
    )
    reference = results[None]
    best_two = np.sort(_logits(reference["probabilities"]), axis=-1)[:, -2:]
    print(f"float32 zero-shot: median gap between the two best class logits "
          f"{np.median(best_two[:, 1] - best_two[:, 0]):.2e}")
    rows = []
    for mode, r in results.items():
        chosen = np.asarray(r["probabilities"]).argmax(-1)
        rows.append(dict(
            mode=mode or "float32",
            image_cosine=float((r["images"] * reference["images"]).sum(-1).min()),
            text_cosine=float((r["texts"] * reference["texts"]).sum(-1).min()),
            zero_shot_top1=float(np.mean(chosen == labels)),
            argmax_agreement=float(np.mean(chosen == np.asarray(reference["probabilities"]).argmax(-1))),
            memory_mib=r["memory"] / 2**20,
            latency_vs_float32=median_ratio(times[mode], times[None]),
        ))
    return rows


def _logits(probabilities):
    probabilities = np.clip(np.asarray(probabilities, "float64"), 1e-300, 1 - 1e-16)
    return np.log(probabilities) - np.log1p(-probabilities)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["adapt", "quantize"])
    parser.add_argument("--preset", default=os.path.join(ROOT, "siglip2_demo", "preset"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.task == "quantize":
        rows = quantize(args.preset, repeats=args.repeats)
        print("| mode | min image cosine | min text cosine | zero-shot top-1 "
              "| argmax agreement | tower weights MiB | CPU latency vs float32 |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['mode']} | {r['image_cosine']:.4f} | {r['text_cosine']:.4f} | "
                  f"{r['zero_shot_top1']:.3f} | {r['argmax_agreement']:.3f} | "
                  f"{r['memory_mib']:.1f} | {r['latency_vs_float32']:.2f} |")
        return rows
    rows = {}
    for method in args.methods:
        runs = [adapt(args.preset, method, args.steps, seed) for seed in args.seeds]
        accuracy = [r[0] for r in runs]
        rows[method] = dict(accuracy=accuracy, trainable=runs[0][1],
                            seconds=statistics.median(r[2] for r in runs))
        print(f"{method}: zero-shot {accuracy}", flush=True)
    before = load(args.preset)
    from keras_siglip2.evaluation import evaluate_zero_shot

    start = evaluate_zero_shot(before, "demo:360", templates="plain", top_k=(1,), verbose=0)
    print(f"\n{args.steps} steps, seeds {args.seeds}; before fine-tuning: "
          f"zero-shot {start['metrics']['top1']:.3f}")
    print("| method | trainable parameters | median step s | zero-shot top-1 mean | min–max |")
    print("|---|---|---|---|---|")
    for method, r in rows.items():
        print(f"| {method} | {r['trainable']:,} | {r['seconds']:.3f} | "
              f"{np.mean(r['accuracy']):.3f} | {min(r['accuracy']):.3f}–{max(r['accuracy']):.3f} |")
    return rows


if __name__ == "__main__":
    main()
