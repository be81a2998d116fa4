"""Memory and FLOPs of the training step per recipe and remat mode, without
running it (on CPU, at real shapes):

- `residuals`: what autodiff keeps from the forward pass for the backward
  pass (the step's activation memory; `workloads.residuals`), by component;
- `state`: weights, optimizer moments, metrics, and one float32 gradient per
  trainable weight;
- `estimate` = state + residuals: the step's memory before transients (the
  largest transient is one block's or one vocabulary chunk's work);
- the analytic FLOP model (`keras_siglip2.flop_model`), by component;
- with `--compile`, XLA's compiled `memory_analysis()` temp bytes and
  `cost_analysis()` FLOPs of Keras' JAX `train_step` (slow; XLA on CPU undoes
  `jax.checkpoint`, so its temp column does not show what remat saves, and it
  counts loop bodies once).

    KERAS_BACKEND=jax python benchmarks/step_memory.py            # B/16@224, batch 256, mixed_bfloat16
    KERAS_BACKEND=jax python benchmarks/step_memory.py --recipes full --remat none block
    KERAS_BACKEND=jax python benchmarks/step_memory.py --smoke    # toy sizes, seconds
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import workloads  # noqa: E402

GIB = 2**30
COMPONENTS = ("vision", "text", "decoder", "self-supervised", "loss")


def analyse(args, recipe, remat):
    """One row: residuals, state and FLOPs of the `recipe` step with `remat`."""
    from keras_siglip2 import flop_model

    config = workloads.backbone_config(
        args.size, depth=args.depth, vocabulary=args.vocabulary, toy=args.smoke
    )
    model = workloads.build_model(
        config, recipe, remat=remat, toy=args.smoke, chunk_size=args.chunk_size
    )
    start = time.perf_counter()
    residuals = workloads.residuals(model, args.batch)
    state = workloads.state_bytes(model)
    locca = model.decoder is not None
    batch = workloads.synthetic_batch(config, args.batch, locca, model.self_supervised)
    flops = flop_model.training_step_flops(
        config, args.batch, locca=locca,
        vocabulary_size=model.decoder.vocabulary_size if locca else None,
        scored_tokens=workloads.scored_tokens(batch) if locca else None,
        chunk_size=args.chunk_size, self_supervised=model.self_supervised, remat=remat,
    )
    row = {
        "recipe": recipe, "remat": remat or "none", "residuals": residuals, "state": state,
        "estimate": state + residuals["total"], "flops": flops,
        "seconds": time.perf_counter() - start,
    }
    if args.compile:
        compiled = workloads.compile_train_step(model, args.batch)
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        row["xla_temp"] = compiled.memory_analysis().temp_size_in_bytes
        row["xla_flops"] = cost.get("flops", 0.0)
    return row


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="b16", choices=sorted(workloads.SIZES))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--depth", type=int, help="layers per tower (default: the size's)")
    parser.add_argument("--vocabulary", type=int, help="text vocabulary (default 256,000)")
    parser.add_argument("--recipes", nargs="+", default=list(workloads.RECIPES),
                        choices=workloads.RECIPES)
    parser.add_argument("--remat", nargs="+", default=["none", "mlp", "block"],
                        choices=["none", "mlp", "block"])
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--compile", action="store_true",
                        help="also compile the step: XLA temp bytes and FLOPs (slow)")
    parser.add_argument("--float32", action="store_true", help="no mixed_bfloat16")
    parser.add_argument("--smoke", action="store_true",
                        help="toy widths, depth 1, batch 4, vocabulary 512")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.depth, args.vocabulary = 4, 1, 512
    return args


def report(rows, args):
    """The Markdown tables of `rows`."""
    unit, name = (2**20, "MiB") if args.smoke else (GIB, "GiB")
    lines = [
        f"{args.size}, batch {args.batch}"
        + (f", depth {args.depth}" if args.depth else "")
        + (", float32" if args.float32 else ", mixed_bfloat16")
        + f", vocabulary chunk {args.chunk_size}",
        "",
        f"| recipe | remat | residuals {name} | " + " | ".join(COMPONENTS)
        + f" | state {name} | estimate {name} | model TFLOP |"
        + (f" XLA temp {name} | XLA TFLOP |" if args.compile else ""),
        "|---" * (6 + len(COMPONENTS) + (2 if args.compile else 0)) + "|",
    ]
    for r in rows:
        cells = [r["recipe"], r["remat"], f"{r['residuals']['total'] / unit:.2f}"]
        cells += [f"{r['residuals'][c] / unit:.2f}" for c in COMPONENTS]
        cells += [f"{r['state'] / unit:.2f}", f"{r['estimate'] / unit:.2f}",
                  f"{r['flops']['total'] / 1e12:.3f}"]
        if args.compile:
            cells += [f"{r['xla_temp'] / unit:.2f}", f"{r['xla_flops'] / 1e12:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    full = next((r for r in rows if r["recipe"] == "full" and r["remat"] == "none"), None)
    if full:
        flops = full["flops"]
        lines += ["", "FLOPs of the five-loss step (remat none), by component:", "",
                  "| component | TFLOP | share |", "|---|---|---|"]
        for key, value in flops.items():
            if key != "total" and value:
                lines.append(f"| {key} | {value / 1e12:.3f} | {value / flops['total']:.1%} |")
        sigmoid = next((r for r in rows if r["recipe"] == "sigmoid" and r["remat"] == "none"), None)
        if sigmoid:
            ratio = flops["total"] / sigmoid["flops"]["total"]
            lines.append(f"\nfive-loss / sigmoid-only FLOPs: {ratio:.2f}×")
    return "\n".join(lines)


def main(argv=None):
    args = parse(argv)
    import keras

    if not args.float32:
        keras.config.set_dtype_policy("mixed_bfloat16")
    rows = []
    for recipe in args.recipes:
        for remat in args.remat:
            row = analyse(args, recipe, None if remat == "none" else remat)
            rows.append(row)
            print(f"{recipe:8s} remat={row['remat']:6s} residuals "
                  f"{row['residuals']['total'] / GIB:7.2f} GiB  estimate "
                  f"{row['estimate'] / GIB:7.2f} GiB  ({row['seconds']:.0f} s)", flush=True)
    print()
    print(report(rows, args))
    return rows


if __name__ == "__main__":
    main()
