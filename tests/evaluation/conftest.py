"""Helpers shared by the evaluation tests."""

import numpy as np


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sign_vectors(rng, n, dim=16):
    """Unit vectors with entries ±1/4 (dim 16): norms are exactly 1 and every dot
    product is an exact multiple of 1/16, so ties are exact in any summation order."""
    assert dim == 16
    return rng.choice([-0.25, 0.25], size=(n, dim))
