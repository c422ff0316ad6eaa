"""Tests for the closed-form ridge probe and its MSE metrics."""

import numpy as np
import pytest

from invcl_tf.probe import RidgeProbe, fit_ridge, mse, mse_per_column


def _data(n=200, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + rng.normal(size=d)  # uncentred on purpose
    w = rng.normal(size=(d, k))
    y = x @ w + rng.normal(size=k) + 0.3 * rng.normal(size=(n, k))
    return x, y


def _objective_grads(x, y, w, b, l2):
    """Gradients of mean((XW + b − y)²) + l2·||W||², derived by hand."""
    r = x @ w + b - y
    scale = 2.0 / r.size
    return scale * x.T @ r + 2.0 * l2 * w, scale * r.sum(axis=0)


def test_l2_zero_matches_lstsq_with_intercept_column():
    x, y = _data()
    probe = fit_ridge(x, y, 0.0)
    sol = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(probe.weights, sol[:-1], rtol=0, atol=1e-8)
    np.testing.assert_allclose(probe.bias, sol[-1], rtol=0, atol=1e-8)
    assert probe.weights.shape == (6, 3) and probe.bias.shape == (3,)


def test_l2_positive_is_stationary_point_of_stated_objective():
    x, y = _data()
    l2 = 0.1
    probe = fit_ridge(x, y, l2)
    g_w, g_b = _objective_grads(x, y, probe.weights, probe.bias, l2)
    np.testing.assert_allclose(g_w, 0.0, atol=1e-10)
    np.testing.assert_allclose(g_b, 0.0, atol=1e-10)
    unreg = fit_ridge(x, y, 0.0)
    assert np.max(np.abs(probe.weights - unreg.weights)) > 1e-2


def test_k_times_n_scaling_of_penalty():
    x, y = _data()
    l2 = 0.05
    probe = fit_ridge(x, y, l2)
    xc, yc = x - x.mean(0), y - y.mean(0)
    n, k = y.shape
    eye = np.eye(x.shape[1])
    scaled = np.linalg.solve(xc.T @ xc + k * n * l2 * eye, xc.T @ yc)
    unscaled = np.linalg.solve(xc.T @ xc + l2 * eye, xc.T @ yc)
    np.testing.assert_allclose(probe.weights, scaled, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(probe.weights - unscaled)) > 1e-2


def test_columns_couple_only_through_k_in_the_penalty():
    # Fitting k columns together equals fitting each alone with l2 scaled by k.
    x, y = _data()
    l2 = 0.05
    joint = fit_ridge(x, y, l2)
    alone = fit_ridge(x, y[:, 1], l2 * y.shape[1])
    np.testing.assert_allclose(joint.weights[:, 1], alone.weights, rtol=1e-10)
    np.testing.assert_allclose(joint.bias[1], alone.bias, rtol=1e-10)


def test_bias_is_not_penalised():
    x, y = _data()
    l2 = 0.1
    base = fit_ridge(x, y, l2)
    shifted = fit_ridge(x, y + 1e6, l2)
    np.testing.assert_allclose(shifted.weights, base.weights, rtol=0, atol=1e-7)
    np.testing.assert_allclose(shifted.bias - base.bias, 1e6, rtol=1e-12)


def test_one_dimensional_targets():
    x, y = _data()
    probe = fit_ridge(x, y[:, 0], 0.1)
    as_column = fit_ridge(x, y[:, :1], 0.1)
    assert probe.weights.shape == (6,) and probe.bias.shape == ()
    np.testing.assert_allclose(probe.weights, as_column.weights[:, 0], rtol=1e-12)
    pred = probe.predict(x)
    assert pred.shape == (len(x),)
    np.testing.assert_allclose(pred, as_column.predict(x)[:, 0], rtol=1e-12)


def test_rank_deficient_unregularised_falls_back_to_min_norm():
    x, y = _data()
    x = np.hstack([x, x[:, :1]])  # duplicate column: XᵀX is singular
    probe = fit_ridge(x, y, 0.0)
    assert np.all(np.isfinite(probe.weights)) and np.all(np.isfinite(probe.bias))
    ref = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    ref_pred = np.hstack([x, np.ones((len(x), 1))]) @ ref
    np.testing.assert_allclose(probe.predict(x), ref_pred, atol=1e-8)
    np.testing.assert_allclose(probe.weights[0], probe.weights[-1], atol=1e-8)


def test_predict_and_probe_are_frozen():
    x, y = _data()
    probe = fit_ridge(x, y, 1e-3)
    np.testing.assert_allclose(probe.predict(x), x @ probe.weights + probe.bias)
    with pytest.raises(ValueError, match="^features"):
        probe.predict(x[:, :-1])
    with pytest.raises(AttributeError):
        probe.weights = probe.weights  # type: ignore[misc]
    with pytest.raises(ValueError):
        probe.weights[0, 0] = 1.0
    assert isinstance(probe, RidgeProbe)


@pytest.mark.parametrize(
    "features, targets, l2, name",
    [
        (np.zeros(5), np.zeros(5), 0.0, "^features"),
        (np.zeros((5, 2)), np.zeros((5, 2, 1)), 0.0, "^targets"),
        (np.zeros((5, 2)), np.zeros(4), 0.0, "^targets"),
        (np.zeros((1, 2)), np.zeros(1), 0.0, "^features"),
        (np.zeros((5, 2)), np.zeros(5), -1e-3, "^l2"),
        (np.zeros((5, 2)), np.zeros(5), float("nan"), "^l2"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(features, targets, l2, name):
    with pytest.raises(ValueError, match=name):
        fit_ridge(features, targets, l2)


def test_mse_and_per_column():
    pred = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    targets = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 5.0]])
    # squared errors: column 0 → 1, 0, 9; column 1 → 0, 4, 0
    per_col = mse_per_column(pred, targets)
    np.testing.assert_allclose(per_col, [10.0 / 3.0, 4.0 / 3.0], rtol=1e-15)
    assert per_col.dtype == np.float64
    total = mse(pred, targets)
    assert isinstance(total, float)
    assert total == pytest.approx(14.0 / 6.0, rel=1e-15)
    np.testing.assert_allclose(mse_per_column(pred[:, 0], targets[:, 0]), [10.0 / 3.0])
    with pytest.raises(ValueError, match="^pred shape"):
        mse(pred, targets[:, :1])
    with pytest.raises(ValueError, match="^pred shape"):
        mse_per_column(pred, targets.T)
