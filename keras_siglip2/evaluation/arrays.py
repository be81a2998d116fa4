"""Input checks and small array helpers shared by the evaluation metrics.

Everything here is NumPy. Embeddings may arrive as NumPy arrays, lists, or tensors
of the active Keras backend; `as_numpy` turns them into NumPy arrays.
"""

import numpy as np

# Queries are scored against the whole corpus this many rows at a time, so no
# metric ever holds a full (num_queries, corpus) similarity matrix.
DEFAULT_BLOCK_SIZE = 1024


def as_numpy(x):
    """NumPy view of `x` (NumPy, list, or a backend tensor such as a torch tensor)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        import keras

        if keras.ops.is_tensor(x):
            return keras.ops.convert_to_numpy(x)
    except ImportError:  # pragma: no cover - keras is a dependency
        pass
    if hasattr(x, "numpy") and callable(x.numpy):  # e.g. a TF tensor under JAX
        return np.asarray(x.numpy())
    return np.asarray(x)


def as_embeddings(x, name):
    """Check that `x` is a non-empty, finite (N, D) float matrix; return floating NumPy."""
    x = as_numpy(x)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must have shape (N, D); got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {x.shape}).")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`{name}` must be numeric; got dtype {x.dtype}.")
    x = x.astype(compute_dtype(x), copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return x


def compute_dtype(*arrays):
    """float64 if any input is float64, else float32 (half precisions are promoted)."""
    if any(np.asarray(a).dtype == np.float64 for a in arrays):
        return np.float64
    return np.float32


def l2_normalize(x, name="embeddings"):
    """Rows of `x` scaled to unit length; a zero row is an error (no direction)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0):
        bad = np.flatnonzero(norms[..., 0] == 0)[:10].tolist()
        raise ValueError(f"`{name}` has zero-length rows (first: {bad}); cannot normalise.")
    return x / norms


def check_same_dim(a, b, name_a, name_b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` have different embedding sizes: "
            f"{a.shape[1]} vs {b.shape[1]}."
        )


def as_index_vector(x, name, length, upper):
    """Check that `x` is a length-`length` vector of ints in [0, upper); return int64."""
    x = as_numpy(x)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be a vector; got shape {x.shape}.")
    if x.shape[0] != length:
        raise ValueError(f"`{name}` has {x.shape[0]} entries; expected {length}.")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integers; got dtype {x.dtype}.")
    x = x.astype(np.int64, copy=False)
    if x.size and (x.min() < 0 or x.max() >= upper):
        bad = x[(x < 0) | (x >= upper)][:10].tolist()
        raise ValueError(f"`{name}` has values outside [0, {upper}): {bad}.")
    return x


def as_k_tuple(ks, name):
    """Positive integer cut-offs as a tuple, in the given order, duplicates dropped."""
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`{name}` must hold positive integers; got {k!r}.")
        if int(k) not in out:
            out.append(int(k))
    if not out:
        raise ValueError(f"`{name}` is empty.")
    return tuple(out)


def row_blocks(num_rows, block_size):
    """(start, stop) pairs covering range(num_rows) in steps of `block_size`."""
    if block_size < 1:
        raise ValueError(f"`block_size` must be positive; got {block_size}.")
    return [(s, min(s + block_size, num_rows)) for s in range(0, num_rows, block_size)]
