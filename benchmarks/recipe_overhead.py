"""Step-time cost of the SigLIP 2 recipe: sigmoid only vs + LocCa vs all five
losses (self-distillation and masked prediction switched on), same model
widths and batch, interleaved in one process; prints time ratios.

    KERAS_BACKEND=jax python benchmarks/recipe_overhead.py --size b16 --depth 2
    KERAS_BACKEND=jax python benchmarks/recipe_overhead.py --size demo
"""

import argparse
import os
import statistics

from common import interleaved, median_ratio


def build(size, depth, variant):
    """(model, batch) for one recipe variant."""
    from keras_siglip2 import demo
    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches
    from tests.training.helpers import first_batch

    locca, self_supervised = {
        "sigmoid": (False, None),
        "sigmoid+locca": (True, None),
        "full": (True, True if size == "b16" else demo.DEMO_SELF_SUPERVISED),
    }[variant]
    model = demo.demo_model(seed=0, locca=locca, self_supervised=self_supervised)
    if size == "b16":
        model = _b16_like(model, depth, locca, self_supervised)
    batch_size = 8 if size == "b16" else 32
    batch = first_batch(training_batches(demo_dataset(batch_size, seed=0), model, batch_size))
    model.compile(self_supervised_start=0)
    return model, batch


def _b16_like(demo_model, depth, locca, self_supervised):
    """The demo's preprocessing on a B/16-width NaFlex model (patch 16, 256
    patches) of `depth` layers per tower."""
    from keras_siglip2.models.backbone import SigLIP2Backbone
    from keras_siglip2.models.siglip2 import SigLIP2
    from keras_siglip2.preprocessing import NaFlexImageConverter, SigLIP2Preprocessor

    trunk = dict(hidden_dim=768, num_heads=12, intermediate_dim=3072, num_layers=depth)
    tokenizer = demo_model.preprocessor.tokenizer
    backbone = SigLIP2Backbone(
        vision=dict(trunk, patch_size=16, image_size=None, max_num_patches=256),
        text=dict(
            trunk, vocabulary_size=tokenizer.vocabulary_size(),
            sequence_length=tokenizer.sequence_length, projection_dim=768,
        ),
    )
    preprocessor = SigLIP2Preprocessor(tokenizer, NaFlexImageConverter(16, 256))
    return SigLIP2(
        backbone, preprocessor, locca=locca, num_coordinate_bins=1000,
        self_supervised=self_supervised,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["demo", "b16"], default="demo")
    parser.add_argument("--depth", type=int, default=2, help="layers per tower at b16")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    steps = {}
    for variant in ("sigmoid", "sigmoid+locca", "full"):
        model, batch = build(args.size, args.depth, variant)
        steps[variant] = lambda model=model, batch=batch: model.train_on_batch(batch)
    times = interleaved(steps, args.repeats)
    print(f"size {args.size}" + (f", depth {args.depth}" if args.size == "b16" else ""))
    print(f"{'variant':<16}{'median s/step':>15}{'× sigmoid only':>16}")
    for variant, variant_times in times.items():
        ratio = median_ratio(variant_times, times["sigmoid"])
        print(f"{variant:<16}{statistics.median(variant_times):>15.3f}{ratio:>16.2f}")


if __name__ == "__main__":
    main()
