"""Tests for the conditional- and total-variance diagnostics."""

import math

import numpy as np
import pytest

from invcl_tf.variance import conditional_variance, normalize_rows, total_variance


def _h(c=5, n=7, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(c, n, d)) * rng.uniform(0.5, 3.0, size=(c, n, 1))


def _unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _loop_conditional(h):
    c, n, d = h.shape
    per_input = []
    for i in range(n):
        vecs = [_unit(h[j, i]) for j in range(c)]
        trace = 0.0
        for k in range(d):
            mean = sum(v[k] for v in vecs) / c
            trace += sum((v[k] - mean) ** 2 for v in vecs) / (c - 1)
        per_input.append(trace)
    return sum(per_input) / n


def _loop_total(h):
    c, n, d = h.shape
    vecs = [_unit(h[j, i]) for j in range(c) for i in range(n)]
    trace = 0.0
    for k in range(d):
        mean = sum(v[k] for v in vecs) / len(vecs)
        trace += sum((v[k] - mean) ** 2 for v in vecs) / (len(vecs) - 1)
    return trace


def test_matches_loop_formulas():
    h = _h()
    cond, tot = conditional_variance(h), total_variance(h)
    assert isinstance(cond, float) and isinstance(tot, float)
    assert cond == pytest.approx(_loop_conditional(h), rel=1e-12)
    assert tot == pytest.approx(_loop_total(h), rel=1e-12)
    assert abs(cond - tot) > 1e-3


def test_hand_computed_value():
    # One input, copies e1 and −e1 after normalisation: per-dimension variance 2 (ddof=1).
    h = np.array([[[5.0, 0.0]], [[-3.0, 0.0]]])
    assert conditional_variance(h) == pytest.approx(2.0, rel=1e-15)


def test_identical_copies_give_zero_conditional_but_positive_total():
    one = _h(c=1, n=7)
    h = np.repeat(one, 4, axis=0) * np.arange(1.0, 5.0)[:, None, None]
    assert conditional_variance(h) == pytest.approx(0.0, abs=1e-14)
    assert total_variance(h) > 0.1


def test_single_input_conditional_equals_total():
    h = _h(n=1)
    assert conditional_variance(h) == pytest.approx(total_variance(h), rel=1e-12)


def test_identical_inputs_differ_only_by_ddof_bookkeeping():
    # h[c, n] = g[c] for every n: pooled squared deviations are N times those per input,
    # so total·(CN − 1) = cond·N(C − 1).
    c, n = 5, 7
    h = np.repeat(_h(c=c, n=1), n, axis=1)
    cond, tot = conditional_variance(h), total_variance(h)
    assert tot == pytest.approx(cond * n * (c - 1) / (c * n - 1), rel=1e-12)
    assert tot < cond


def test_law_of_total_variance():
    c, n = 5, 7
    h = _h(c=c, n=n)
    hn = normalize_rows(h)
    means = hn.mean(axis=0)
    between = c * np.sum((means - means.mean(axis=0)) ** 2)
    lhs = (c * n - 1) * total_variance(h)
    rhs = n * (c - 1) * conditional_variance(h) + between
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_rows_are_normalised_first():
    h = _h()
    scale = np.random.default_rng(1).uniform(0.01, 100.0, size=(*h.shape[:2], 1))
    assert conditional_variance(h * scale) == pytest.approx(conditional_variance(h), rel=1e-12)
    assert total_variance(h * scale) == pytest.approx(total_variance(h), rel=1e-12)


def test_normalize_rows():
    h = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = normalize_rows(h)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-15)
    assert out.dtype == np.float64


@pytest.mark.parametrize("fn", [conditional_variance, total_variance])
def test_bad_shapes_raise_naming_h(fn):
    with pytest.raises(ValueError, match="^h "):
        fn(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="^h "):
        fn(np.zeros((1, 1, 4)))


def test_single_copy_raises_for_conditional():
    with pytest.raises(ValueError, match="^h "):
        conditional_variance(_h(c=1))
    assert total_variance(_h(c=1)) > 0.0
