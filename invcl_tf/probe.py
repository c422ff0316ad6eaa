"""Linear probes on frozen representations (SPEC §5): closed-form ridge and softmax regression.

The ridge objective is the authors': the mean over all N·k entries of
``(X W + b − y)²`` plus ``l2·||W||²``, the bias unpenalised. Because the data term is a
mean over N·k entries, the optimum solves ``(XcᵀXc + k·N·l2·I) W = Xcᵀ yc`` on centred data.
The logistic objective is the mean over N examples of the softmax cross-entropy of
``X W + b`` plus ``l2·||W||²``, again with the bias unpenalised, minimised by L-BFGS.
"""

import dataclasses
import warnings

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special


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


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: == on arrays is ambiguous
class LogisticProbe:
    """A fitted softmax classifier with logits ``features @ weights + bias``.

    ``grad_norm`` is the infinity-norm of the full objective gradient over (W, b) at the
    returned solution, recomputed after the solve. ``converged`` is True when L-BFGS-B met
    its gradient test or the objective stopped decreasing in float64 (the optimum to working
    precision), False when it hit ``max_iter`` or its line search failed.
    ``iterations`` counts L-BFGS iterations.
    """

    weights: np.ndarray
    bias: np.ndarray
    grad_norm: float
    iterations: int
    converged: bool

    def predict_logits(self, features):
        """Returns the logits ``[M, C]`` in float64."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"features must have shape [M, {self.weights.shape[0]}], got {x.shape}"
            )
        return x @ self.weights + self.bias

    def predict_proba(self, features):
        """Returns the softmax class probabilities ``[M, C]``."""
        return np.exp(_log_softmax(self.predict_logits(features)))

    def predict(self, features):
        """Returns the predicted class indices ``[M]`` (argmax of the logits)."""
        return np.argmax(self.predict_logits(features), axis=1)


def _log_softmax(logits):
    return logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)


def _check_labels(labels, n, num_classes=None):
    """Returns ``labels`` as an array after checking it is ``[n]`` integers in ``[0, C)``."""
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {y.dtype} of shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but expected {n}")
    upper = np.inf if num_classes is None else num_classes
    if n and (y.min() < 0 or y.max() >= upper):
        raise ValueError(f"labels must lie in [0, {upper}), got [{y.min()}, {y.max()}]")
    return y


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _objective_and_grad(params, x, labels, l2):
    """Value and gradient of ``mean_i CE(x_i W + b, y_i) + l2·||W||²`` at flat ``(W, b)``.

    ``params`` is ``W.ravel()`` (``[D, C]``) followed by ``b`` (``[C]``).
    """
    n, d = x.shape
    c = params.size // (d + 1)
    w = params[: d * c].reshape(d, c)
    b = params[d * c :]
    log_p = _log_softmax(x @ w + b)
    rows = np.arange(n)
    value = -np.mean(log_p[rows, labels]) + l2 * np.sum(w * w)
    residual = np.exp(log_p)  # d(mean CE)/d(logits) = (softmax − onehot) / N
    residual[rows, labels] -= 1.0
    residual /= n
    grad_w = x.T @ residual + (2.0 * l2) * w
    return value, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])


def fit_logistic(features, labels, l2, num_classes=None, max_iter=500, tol=1e-10):
    """Fits softmax regression minimising ``mean CE(XW + b, y) + l2·||W||²`` in float64.

    Full-batch L-BFGS-B from zero with an analytic gradient; stops when the gradient's
    infinity-norm is at most ``tol``, when the objective no longer decreases in float64,
    or after ``max_iter`` iterations. ``num_classes`` defaults to ``max(labels) + 1``.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, D], got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError("features must have at least one row")
    if not np.all(np.isfinite(x)):
        raise ValueError("features must be finite")
    y = _check_labels(labels, x.shape[0])
    if num_classes is None:
        num_classes = int(y.max()) + 1
    elif not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    c = int(num_classes)
    if y.max() >= c:
        raise ValueError(f"labels must lie in [0, {c}), got max {y.max()}")
    l2 = float(l2)
    if not l2 >= 0.0:  # also rejects NaN
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if not _is_int(max_iter) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    tol = float(tol)
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0, got {tol}")

    d = x.shape[1]
    # Exact reparametrisation for conditioning: XW + b = (X − μ)W + (b + μW), and the penalty
    # involves W alone, so solving on centred features and mapping back is the same problem.
    mean = x.mean(axis=0)
    # The gradient maps back as g_W + μ g_bᵀ, so this gtol keeps the original one within tol.
    centred_tol = tol / (1.0 + float(np.max(np.abs(mean))))
    result = scipy.optimize.minimize(
        _objective_and_grad,
        np.zeros(d * c + c),
        args=(x - mean, y, l2),
        method="L-BFGS-B",
        jac=True,
        # ftol = 0: stop on a relative decrease only when it is exactly zero, so a small
        # objective (near-separable data) cannot end the solve early.
        options={"maxiter": max_iter, "gtol": centred_tol, "ftol": 0.0, "maxcor": 20, "maxls": 50},
    )
    params = result.x.copy()
    params[d * c :] -= mean @ params[: d * c].reshape(d, c)
    _, grad = _objective_and_grad(params, x, y, l2)
    grad_norm = float(np.max(np.abs(grad)))
    weights = params[: d * c].reshape(d, c)
    bias = params[d * c :]
    weights.setflags(write=False)
    bias.setflags(write=False)
    return LogisticProbe(weights=weights, bias=bias, grad_norm=grad_norm,
                         iterations=int(result.nit), converged=bool(result.success))


def accuracy(logits_or_labels_pred, labels):
    """Fraction of examples whose predicted class (argmax for ``[N, C]`` logits) is right."""
    p = np.asarray(logits_or_labels_pred)
    if p.ndim == 2:
        p = np.argmax(p, axis=1)
    elif p.ndim != 1 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(
            "logits_or_labels_pred must be [N, C] logits or [N] integer labels, "
            f"got {p.dtype} of shape {p.shape}"
        )
    if p.shape[0] == 0:
        raise ValueError("logits_or_labels_pred must be non-empty")
    y = _check_labels(labels, p.shape[0])
    return float(np.mean(p == y))


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of ``[N, C]`` logits against integer labels, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D [N, C], got shape {z.shape}")
    if z.shape[0] == 0:
        raise ValueError("logits must be non-empty")
    y = _check_labels(labels, z.shape[0], z.shape[1])
    return float(-np.mean(_log_softmax(z)[np.arange(z.shape[0]), y]))
