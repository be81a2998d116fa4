"""Plain-text result tables and chance levels (used by `siglip2 demo` and `siglip2 eval`).

Chance levels are exact under a uniformly random ranking (every order of the corpus
equally likely), with the metric names that `zero_shot_accuracy` and
`retrieval_recall` return:

- zero-shot top-k: min(k, C) / C.
- text→image R@k (one correct image among N_img): min(k, N_img) / N_img.
- image→text R@k (m correct captions among N_txt texts; hit if any is in the top k):
  1 − C(N_txt − m, k) / C(N_txt, k), averaged over images when m varies.
"""

import numbers

import numpy as np

from keras_siglip2.evaluation.arrays import as_k_tuple


def _positive_int(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {x!r}.")
    return int(x)


def probability_none_in_top_k(num_items, num_correct, k):
    """P(no correct item among the first k) for a uniformly random order:
    C(n − m, k) / C(n, k) = Π_{i<k} (n − m − i) / (n − i); 0 when n − m < k."""
    k = min(k, num_items)
    if num_items - num_correct < k:
        return 0.0
    i = np.arange(k, dtype=np.float64)
    return float(np.prod((num_items - num_correct - i) / (num_items - i)))


def chance_levels(
    num_classes=None, num_images=None, num_texts_per_image=None, ks=(1, 5, 10), top_k=(1, 5)
):
    """Chance value of each metric, keyed like the metric dicts.

    Args:
        num_classes: C, for zero-shot `top{k}` keys (k from `top_k`); None to skip.
        num_images: N_img, for retrieval keys (k from `ks`); None to skip.
        num_texts_per_image: captions per image: an int m (N_txt = m·N_img) or a
            sequence of N_img counts; required with `num_images`.
        ks: retrieval cut-offs.
        top_k: zero-shot cut-offs.

    Returns:
        dict of metric name → float.
    """
    chance = {}
    if num_classes is not None:
        c = _positive_int(num_classes, "num_classes")
        for k in as_k_tuple(top_k, "top_k"):
            chance[f"top{k}"] = min(k, c) / c
    if num_images is None and num_texts_per_image is not None:
        raise ValueError("`num_texts_per_image` needs `num_images`.")
    if num_images is not None:
        n_img = _positive_int(num_images, "num_images")
        if num_texts_per_image is None:
            raise ValueError(
                "`num_images` needs `num_texts_per_image` (an int or per-image counts)."
            )
        if isinstance(num_texts_per_image, (int, np.integer)):
            counts = [_positive_int(num_texts_per_image, "num_texts_per_image")] * n_img
        else:
            counts = [_positive_int(m, "num_texts_per_image") for m in num_texts_per_image]
            if len(counts) != n_img:
                raise ValueError(
                    f"`num_texts_per_image` has {len(counts)} counts; expected {n_img}."
                )
        n_txt = sum(counts)
        ks = as_k_tuple(ks, "ks")
        distinct = {m: counts.count(m) for m in set(counts)}
        for k in ks:
            miss = sum(w * probability_none_in_top_k(n_txt, m, k) for m, w in distinct.items())
            chance[f"image_to_text_R@{k}"] = 1.0 - miss / n_img
        for k in ks:
            chance[f"text_to_image_R@{k}"] = min(k, n_img) / n_img
    return chance


def _format_value(value, percent):
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{100 * float(value):.2f}%" if percent else f"{float(value):.4f}"
    return str(value)


def format_table(results, chance=None, title=None, percent=False):
    """Render metrics as an aligned plain-text table.

    Args:
        results: dict metric name → value (floats printed with 4 decimals, ints as-is).
        chance: optional dict metric name → chance value (e.g. from `chance_levels`);
            adds a "chance" column, "-" for metrics it lacks.
        title: optional first line.
        percent: print floats as percentages with 2 decimals (paper style).

    Returns:
        str, no trailing newline.
    """
    if not results:
        raise ValueError("`results` is empty: nothing to print.")
    header = ["metric", "value"] + (["chance"] if chance is not None else [])
    rows = []
    for name, value in results.items():
        row = [str(name), _format_value(value, percent)]
        if chance is not None:
            row.append(_format_value(chance[name], percent) if name in chance else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first] + rest).rstrip()

    lines = [title] if title else []
    lines += [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in rows]
    return "\n".join(lines)
