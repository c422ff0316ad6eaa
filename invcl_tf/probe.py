"""Closed-form linear (ridge) probe on frozen representations, and its MSE metrics.

The objective is the authors' (SPEC §5): the mean over all N·k entries of
``(X W + b − y)²`` plus ``l2·||W||²``, the bias unpenalised. Because the data term is a
mean over N·k entries, the optimum solves ``(XcᵀXc + k·N·l2·I) W = Xcᵀ yc`` on centred data.
"""

import dataclasses
import warnings

import numpy as np
import scipy.linalg


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: == on arrays is ambiguous
class RidgeProbe:
    """A fitted linear map; shapes ``[D, k]`` / ``[k]``, or ``[D]`` / ``[]`` for 1-D targets."""

    weights: np.ndarray
    bias: np.ndarray

    def predict(self, features):
        """Returns ``features @ weights + bias``, ``[M, k]`` (or ``[M]`` for 1-D targets)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"features must have shape [M, {self.weights.shape[0]}], got {x.shape}"
            )
        return x @ self.weights + self.bias


def fit_ridge(features, targets, l2):
    """Fits the ridge probe minimising ``mean((XW + b − y)²) + l2·||W||²`` in float64."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, D], got shape {x.shape}")
    if y.ndim not in (1, 2):
        raise ValueError(f"targets must be 1-D [N] or 2-D [N, k], got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"targets has {y.shape[0]} rows but features has {x.shape[0]}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows (N >= 2), got {x.shape[0]}")
    l2 = float(l2)
    if not l2 >= 0.0:  # also rejects NaN
        raise ValueError(f"l2 must be >= 0, got {l2}")

    y2 = y.reshape(y.shape[0], -1)
    n, k = y2.shape
    x_mean = x.mean(axis=0)
    y_mean = y2.mean(axis=0)
    xc = x - x_mean
    # Centring y is redundant in exact arithmetic (Xcᵀ1 = 0) but avoids cancellation.
    yc = y2 - y_mean
    gram = xc.T @ xc + (k * n * l2) * np.eye(x.shape[1])
    rhs = xc.T @ yc
    try:
        with warnings.catch_warnings():
            # An ill-conditioned Cholesky solve only warns; treat it as singular.
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            weights = scipy.linalg.solve(gram, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
        # E.g. l2 = 0 with rank-deficient X: take the minimum-norm solution.
        weights = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    bias = y_mean - x_mean @ weights
    if y.ndim == 1:
        weights, bias = weights[:, 0], bias[0]
    weights = np.array(weights)
    bias = np.array(bias)
    weights.setflags(write=False)
    bias.setflags(write=False)
    return RidgeProbe(weights=weights, bias=bias)


def _check_pair(pred, targets):
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} does not match targets shape {t.shape}")
    if p.size == 0:
        raise ValueError("pred and targets must be non-empty")
    return p, t


def mse(pred, targets):
    """Mean squared error over all entries, as a Python float."""
    p, t = _check_pair(pred, targets)
    return float(np.mean((p - t) ** 2))


def mse_per_column(pred, targets):
    """Mean squared error of each target column, float64 ``[k]`` (``[1]`` for 1-D inputs)."""
    p, t = _check_pair(pred, targets)
    if p.ndim not in (1, 2):
        raise ValueError(f"pred must be 1-D or 2-D, got shape {p.shape}")
    d = (p - t).reshape(p.shape[0], -1)
    return np.mean(d**2, axis=0)
