"""Spread of normalised representations under transformation (SPEC §5).

Both diagnostics take ``h [C, N, D]``: C transformed copies (copy axis first) of each of N
inputs. ``conditional_variance`` is the quantity the paper defines; ``total_variance`` is
what the authors' script in effect measured, and is the one to compare with their numbers.
"""

import numpy as np

_EPS = 1e-12


def normalize_rows(h):
    """Scales each vector along the last axis to unit L2 norm (float64)."""
    h = np.asarray(h, dtype=np.float64)
    norm = np.linalg.norm(h, axis=-1, keepdims=True)
    # max rather than adding eps, so a rescaled row gives exactly the same ĥ.
    return h / np.maximum(norm, _EPS)


def _normalised_copies(h):
    h = np.asarray(h, dtype=np.float64)
    if h.ndim != 3 or 0 in h.shape:
        raise ValueError(f"h must be a non-empty [C, N, D] array, got shape {h.shape}")
    return normalize_rows(h)


def conditional_variance(h):
    """Per input, the trace of the unbiased covariance across its C copies; mean over inputs."""
    hn = _normalised_copies(h)
    if hn.shape[0] < 2:
        raise ValueError(f"h needs at least 2 copies (C >= 2) on axis 0, got {hn.shape[0]}")
    return float(np.var(hn, axis=0, ddof=1).sum(axis=-1).mean())


def total_variance(h):
    """The trace of the unbiased covariance of all C·N normalised vectors pooled together."""
    hn = _normalised_copies(h)
    pooled = hn.reshape(-1, hn.shape[-1])
    if pooled.shape[0] < 2:
        raise ValueError(f"h needs at least 2 vectors in total (C·N >= 2), got {pooled.shape[0]}")
    return float(np.var(pooled, axis=0, ddof=1).sum())
