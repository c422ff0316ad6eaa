"""Tests for the L-BFGS softmax-regression probe and its classification metrics."""

import numpy as np
import pytest
import scipy.special

from invcl_tf.probe import (
    LogisticProbe,
    _objective_and_grad,
    accuracy,
    cross_entropy,
    fit_logistic,
)

_PRIORS = np.array([0.5, 0.3, 0.2])


def _data(n=300, d=4, spread=1.0, offset=3.0, seed=0):
    """Gaussian classes with unequal priors; uncentred features on purpose."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(_PRIORS), size=n, p=_PRIORS)
    centres = rng.normal(size=(len(_PRIORS), d))
    x = centres[y] + spread * rng.normal(size=(n, d)) + offset
    return x, y


def _reference_objective(x, y, w, b, l2):
    """The SPEC §5 objective written independently: one-hot cross-entropy, mean over N."""
    log_p = scipy.special.log_softmax(x @ w + b, axis=1)
    onehot = np.eye(w.shape[1])[y]
    return -np.sum(onehot * log_p) / x.shape[0] + l2 * np.sum(w**2)


def _reference_grad(x, y, w, b, l2):
    """Gradients of ``_reference_objective`` with respect to W and b, derived by hand."""
    r = (scipy.special.softmax(x @ w + b, axis=1) - np.eye(w.shape[1])[y]) / x.shape[0]
    return x.T @ r + 2.0 * l2 * w, r.sum(axis=0)


def _newton(x, y, l2, start, steps=60):
    """Damped Newton on ``_reference_objective`` over V = [W; b], a ``[D + 1, C]`` array."""
    n, d = x.shape
    xt = np.hstack([x, np.ones((n, 1))])
    penalised = np.ones_like(start)
    penalised[-1] = 0.0

    def value(v):
        return _reference_objective(x, y, v[:-1], v[-1], l2)

    v = start.copy()
    for _ in range(steps):
        g_w, g_b = _reference_grad(x, y, v[:-1], v[-1], l2)
        g = np.vstack([g_w, g_b]).ravel()
        if np.max(np.abs(g)) < 1e-14:
            break
        p = scipy.special.softmax(xt @ v, axis=1)
        s = np.einsum("ia,ab->iab", p, np.eye(p.shape[1])) - np.einsum("ia,ib->iab", p, p)
        h = np.einsum("ij,ik,iab->jakb", xt, xt, s).reshape(g.size, g.size) / n
        h += np.diag(2.0 * l2 * penalised.ravel())
        # lstsq: the Hessian is singular along a common shift of all biases.
        step = np.linalg.lstsq(h, g, rcond=None)[0].reshape(v.shape)
        t, f0 = 1.0, value(v)
        while value(v - t * step) > f0 - 1e-4 * t * np.sum(g * step.ravel()) and t > 1e-10:
            t /= 2.0
        v = v - t * step
    return v[:-1], v[-1]


def _gauge(w, b):
    # Adding a vector to every column of W (when l2 = 0) or a constant to every bias leaves
    # the objective unchanged; compare solutions with those shifts removed.
    return w - w.mean(axis=1, keepdims=True), b - b.mean()


def test_gradient_matches_finite_differences_of_the_objective():
    x, y = _data(n=50)
    l2 = 0.3
    rng = np.random.default_rng(1)
    params = rng.normal(size=x.shape[1] * 3 + 3)
    w, b = params[:-3].reshape(x.shape[1], 3), params[-3:]
    value, grad = _objective_and_grad(params, x, y, l2)
    assert value == pytest.approx(_reference_objective(x, y, w, b, l2), rel=1e-13)
    eps = 1e-6
    numeric = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = eps
        up, down = params + e, params - e
        numeric[i] = (
            _reference_objective(x, y, up[:-3].reshape(w.shape), up[-3:], l2)
            - _reference_objective(x, y, down[:-3].reshape(w.shape), down[-3:], l2)
        ) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    g_w, g_b = _reference_grad(x, y, w, b, l2)
    np.testing.assert_allclose(np.concatenate([g_w.ravel(), g_b]), numeric, rtol=1e-6, atol=1e-8)
    # Logits in the thousands: a naive log-sum-exp would overflow.
    value, grad = _objective_and_grad(1e3 * params, x, y, l2)
    assert value == pytest.approx(_reference_objective(x, y, 1e3 * w, 1e3 * b, l2), rel=1e-12)
    assert np.all(np.isfinite(grad))


def test_solution_is_stationary_and_grad_norm_reports_it():
    x, y = _data()
    probe = fit_logistic(x, y, 1e-3)
    g_w, g_b = _reference_grad(x, y, probe.weights, probe.bias, 1e-3)
    full = np.max(np.abs(np.concatenate([g_w.ravel(), g_b])))
    assert full < 1e-6
    assert probe.grad_norm == pytest.approx(full, rel=1e-6, abs=1e-14)
    assert probe.converged
    assert 0 < probe.iterations <= 500
    assert probe.weights.shape == (4, 3) and probe.bias.shape == (3,)


@pytest.mark.parametrize("l2", [1e-3, 0.0])
def test_matches_newton_from_a_different_start(l2):
    # Large spread: the classes overlap, so l2 = 0 has a finite optimum.
    x, y = _data(spread=2.0)
    probe = fit_logistic(x, y, l2)
    assert probe.converged
    start = 0.1 * np.random.default_rng(2).normal(size=(x.shape[1] + 1, 3))
    w_ref, b_ref = _gauge(*_newton(x, y, l2, start))
    w, b = _gauge(probe.weights, probe.bias)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b, b_ref, rtol=0, atol=1e-6)


def test_objective_is_a_mean_over_examples():
    # Duplicating every example leaves a mean unchanged; a sum would halve the penalty's weight.
    x, y = _data()
    once = fit_logistic(x, y, 1e-2)
    twice = fit_logistic(np.vstack([x, x]), np.concatenate([y, y]), 1e-2)
    np.testing.assert_allclose(twice.weights, once.weights, rtol=0, atol=1e-7)
    np.testing.assert_allclose(twice.bias, once.bias, rtol=0, atol=1e-7)


def test_bias_is_not_penalised():
    x, y = _data(n=1000)
    freq = np.bincount(y, minlength=3) / len(y)
    # The bias's stationarity condition: mean predicted probability = class frequency.
    probe = fit_logistic(x, y, 1e-2)
    np.testing.assert_allclose(probe.predict_proba(x).mean(axis=0), freq, rtol=0, atol=1e-9)
    # A huge penalty kills W, yet the bias alone still fits the class priors.
    heavy = fit_logistic(x, y, 1e3)
    assert np.max(np.abs(heavy.weights)) < 1e-3
    np.testing.assert_allclose(heavy.predict_proba(x), np.tile(freq, (len(y), 1)), atol=1e-2)
    assert np.max(np.abs(heavy.bias - (np.log(freq) - np.log(freq).mean()))) < 1e-2


def test_separable_data_is_classified_perfectly():
    x, y = _data(spread=0.05)
    probe = fit_logistic(x, y, 1e-5)
    assert accuracy(probe.predict(x), y) == 1.0
    assert accuracy(probe.predict_logits(x), y) == 1.0
    np.testing.assert_allclose(probe.predict_proba(x).sum(axis=1), 1.0, rtol=1e-12)
    assert cross_entropy(probe.predict_logits(x), y) < 0.05


def test_cross_entropy_and_accuracy_on_a_hand_computed_example():
    logits = np.array([[0.0, np.log(3.0), 0.0], [2.0, 3.0, 2.0], [1000.0, 0.0, 0.0]])
    labels = np.array([1, 0, 1])
    # Per row: −log(3/5), log(2e² + e³) − 2 = log(2 + e), and 1000 (no overflow).
    expected = (np.log(5.0 / 3.0) + np.log(2.0 + np.e) + 1000.0) / 3.0
    ce = cross_entropy(logits, labels)
    assert isinstance(ce, float)
    assert ce == pytest.approx(expected, rel=1e-14)
    acc = accuracy(logits, labels)  # argmax: 1 (right), 1 (wrong), 0 (wrong)
    assert isinstance(acc, float) and acc == pytest.approx(1.0 / 3.0)
    assert accuracy(np.array([1, 0, 0]), labels) == pytest.approx(2.0 / 3.0)


def test_doubling_l2_changes_the_solution():
    x, y = _data()
    single = fit_logistic(x, y, 1e-2)
    double = fit_logistic(x, y, 2e-2)
    assert np.max(np.abs(single.weights - double.weights)) > 1e-3
    assert np.linalg.norm(double.weights) < np.linalg.norm(single.weights)
    # Each is stationary for its own l2 only.
    g_w, _ = _reference_grad(x, y, double.weights, double.bias, 1e-2)
    assert np.max(np.abs(g_w)) > 1e-4


def test_tol_bounds_the_gradient_on_uncentred_features():
    x, y = _data(offset=100.0)
    probe = fit_logistic(x, y, 1e-3, tol=1e-5)
    assert probe.converged and probe.grad_norm <= 1e-5
    assert probe.iterations < fit_logistic(x, y, 1e-3).iterations


def test_max_iter_caps_the_solve_and_converged_reports_it():
    x, y = _data(spread=2.0)
    probe = fit_logistic(x, y, 0.0, max_iter=2)
    assert probe.iterations <= 2
    assert not probe.converged and probe.grad_norm > 1e-6


def test_num_classes_beyond_the_labels_seen():
    x, y = _data()
    probe = fit_logistic(x, y, 1e-3, num_classes=5)
    assert probe.weights.shape == (4, 5) and probe.bias.shape == (5,)
    assert np.max(probe.predict_proba(x)[:, 3:]) < 1e-6


def test_probe_is_frozen_and_checks_feature_width():
    x, y = _data()
    probe = fit_logistic(x, y, 1e-3)
    assert isinstance(probe, LogisticProbe)
    np.testing.assert_allclose(probe.predict_logits(x), x @ probe.weights + probe.bias)
    with pytest.raises(ValueError, match="^features"):
        probe.predict(x[:, :-1])
    with pytest.raises(AttributeError):
        probe.bias = probe.bias  # type: ignore[misc]
    with pytest.raises(ValueError):
        probe.weights[0, 0] = 1.0


_X = np.zeros((4, 2))
_Y = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    "features, labels, kwargs, name",
    [
        (np.zeros(4), _Y, {}, "^features"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), {}, "^features"),
        (np.array([[0.0, np.nan]] * 4), _Y, {}, "^features"),
        (_X, _Y.astype(float), {}, "^labels"),
        (_X, _Y[:, None], {}, "^labels"),
        (_X, _Y[:3], {}, "^labels"),
        (_X, np.array([0, -1, 0, 1]), {}, "^labels"),
        (_X, np.array([0, 2, 0, 1]), {"num_classes": 2}, "^labels"),
        (_X, _Y, {"num_classes": 0}, "^num_classes"),
        (_X, _Y, {"num_classes": 2.0}, "^num_classes"),
        (_X, _Y, {"l2": -1e-3}, "^l2"),
        (_X, _Y, {"l2": float("nan")}, "^l2"),
        (_X, _Y, {"max_iter": -1}, "^max_iter"),
        (_X, _Y, {"tol": float("nan")}, "^tol"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(features, labels, kwargs, name):
    kwargs = {"l2": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=name):
        fit_logistic(features, labels, **kwargs)


def test_metric_bad_inputs_raise_naming_the_argument():
    logits = np.zeros((3, 2))
    with pytest.raises(ValueError, match="^logits"):
        cross_entropy(np.zeros(3), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="^labels"):
        cross_entropy(logits, np.array([0, 2, 0]))
    with pytest.raises(ValueError, match="^labels"):
        cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="^logits_or_labels_pred"):
        accuracy(np.array([0.0, 1.0, 0.0]), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="^labels"):
        accuracy(logits, np.array([0, 1]))
