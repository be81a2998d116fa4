"""Forward + backward of a projection on JAX: Keras' own `Dense`/`EinsumDense`
call (a matmul or einsum on the 3-D activations) against ours
(`layers.projections`: the leading axes flattened, one 2-D matmul), side by
side, same weights, jit-compiled `jax.grad` of a sum of squares with respect
to the kernel, the bias and the input.

Shapes (`(B, T, D)` → out): the demo's image tower (32 × 64 tokens, width 96:
MLP in and attention query), a B/16 tower at batch 8 (196 tokens, width
768: MLP in and query) and its masked patches' prototype scores (a `Dense`
without bias computes them as `PrototypeHead` does with
`layers.projections.project`). Prints each side's median milliseconds over
`--repeats` interleaved rounds and the speed-up (median of per-round ratios
Keras / ours); the largest gradient difference shows both compute the same.

`--demo-step` also times the whole demo training step (`siglip2 demo`'s
model, all losses but the self-supervised ones, which switch on late; batch
32): two models from the same seed, one with every `Dense` and `EinsumDense`
sent back to Keras' call (the patch embedding flattens in both).

Usage:
    KERAS_BACKEND=jax python benchmarks/projection_grad.py [--repeats 20] [--demo-step]
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CASES = {
    "demo MLP in (32×64, 96 → 384)": ((32, 64, 96), "dense", 384),
    "demo query (32×64, 96 → 4×24)": ((32, 64, 96), "btd,dnh->btnh", (4, 24)),
    "B/16 MLP in (8×196, 768 → 3072)": ((8, 196, 768), "dense", 3072),
    "B/16 query (8×196, 768 → 12×64)": ((8, 196, 768), "btd,dnh->btnh", (12, 64)),
    # The masked patches' prototype scores (`PrototypeHead`, default sizes: half
    # of 196 patches, bottleneck 256, 8192 patch prototypes): a matmul, no bias.
    "B/16 patch prototypes (8×98, 256 → 8192)": ((8, 98, 256), "matmul", 8192),
}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="names from CASES")
    parser.add_argument("--demo-step", action="store_true", help="also the demo's training step")
    return parser.parse_args(argv)


def layer_pair(kind, out):
    """(Keras' layer, ours), built alike and holding the same weights."""
    import keras

    from keras_siglip2.layers import projections

    if kind in ("dense", "matmul"):
        layers = tuple(cls(out, use_bias=kind == "dense")
                       for cls in (keras.layers.Dense, projections.Dense))
    else:
        layers = tuple(cls(kind, output_shape=(None, *out), bias_axes="nh")
                       for cls in (keras.layers.EinsumDense, projections.EinsumDense))
    return layers


def gradient_fn(layer, inputs):
    """A call returning `(grad kernel, grad bias, grad inputs)` of
    `sum(layer(inputs)²)`, compiled."""
    import jax
    import jax.numpy as jnp

    def loss(trainable, x):
        outputs, _ = layer.stateless_call(trainable, [], x)
        return jnp.sum(outputs**2)

    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    trainable = [v.value for v in layer.trainable_variables]
    return lambda: jax.block_until_ready(step(trainable, inputs))


def measure(args):
    import numpy as np

    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit("Run with KERAS_BACKEND=jax: the comparison is of XLA's backward.")
    common.set_threads()
    rows = []
    for name in args.cases:
        shape, kind, out = CASES[name]
        inputs = np.random.default_rng(0).normal(size=shape).astype("float32")
        theirs, ours = layer_pair(kind, out)
        theirs.build(shape)
        ours.build(shape)
        ours.set_weights(theirs.get_weights())
        fns = {"keras": gradient_fn(theirs, inputs), "ours": gradient_fn(ours, inputs)}
        results = {side: fn() for side, fn in fns.items()}
        difference = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / (np.max(np.abs(np.asarray(a))) + 1e-30))
            for a, b in zip(keras.tree.flatten(results["keras"]), keras.tree.flatten(results["ours"])))
        times = common.interleaved(fns, args.repeats, warmup=2, pause=0.0)
        rows.append({
            "case": name,
            "keras": 1e3 * statistics.median(times["keras"]),
            "ours": 1e3 * statistics.median(times["ours"]),
            "speed": common.median_ratio(times["keras"], times["ours"]),
            "difference": difference,
        })
    return rows


def demo_step_row(repeats):
    """The demo's training step with Keras' projections against ours."""
    import keras

    from keras_siglip2 import demo
    from keras_siglip2.data import demo_shapes
    from keras_siglip2.data.pipeline import training_batches
    from keras_siglip2.layers.projections import FlatProjection

    models = {}
    for side in ("keras", "ours"):
        model = demo.demo_model(seed=0)
        model.compile(learning_rate=3e-3, total_steps=1000, self_supervised_start=1000)
        if side == "keras":
            for layer in model._flatten_layers():
                if isinstance(layer, FlatProjection):
                    layer.call = super(FlatProjection, layer).call  # Keras' class's call
        models[side] = model
    raw = demo_shapes.demo_dataset(256, seed=0, split="train").cache().repeat()
    batches = iter(training_batches(raw, models["ours"], 32, seed=0))
    batch = keras.tree.map_structure(lambda x: x.numpy(), next(batches))
    fns = {side: (lambda m: lambda: m.train_on_batch(batch))(m) for side, m in models.items()}
    times = common.interleaved(fns, repeats, warmup=2, pause=0.0)
    return {
        "case": "demo training step (batch 32)",
        "keras": 1e3 * statistics.median(times["keras"]),
        "ours": 1e3 * statistics.median(times["ours"]),
        "speed": common.median_ratio(times["keras"], times["ours"]),
        "difference": float("nan"),
    }


COLUMNS = [("case", "case", ""), ("keras", "Keras ms", ".2f"), ("ours", "ours ms", ".2f"),
           ("speed", "ours speed-up", ".2f"), ("difference", "max rel. |Δ| of gradients", ".1e")]


def main(argv=None):
    args = parse(argv)
    rows = measure(args)
    if args.demo_step:
        rows.append(demo_step_row(args.repeats))
    print(f"Projection forward + backward on JAX (jit), float32; median of {args.repeats} "
          "interleaved rounds.")
    print()
    print(common.format_table(rows, COLUMNS))
    return rows


if __name__ == "__main__":
    main()
