"""The gradient penalty: expectation over signs, double-backprop gradient, clip, shapes."""

import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.penalty import gradient_penalty, penalty_terms, rademacher

B, K, D, N = 5, 3, 6, 7
NO_CLIP = 1e9
DRAWS = 2000


def _problem(seed=0):
    """alpha [B, K] and alpha_extra [B, N, K] on the scale of colour-jitter parameters."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.6, 1.4, size=(B, K)).astype(np.float32)
    alpha_extra = rng.uniform(0.6, 1.4, size=(B, N, K)).astype(np.float32)
    return alpha, alpha_extra


def _sign_draws(draws, seed=0):
    rng = np.random.default_rng(seed)
    return (2 * rng.integers(0, 2, size=(draws, B, D)) - 1).astype(np.float32)


def _monte_carlo(representation_fn, alpha, alpha_extra, normalize, draws=DRAWS):
    """Penalty for each of ``draws`` explicit sign draws (one traced function, looped)."""
    penalty_fn = tf.function(lambda signs: gradient_penalty(
        representation_fn, alpha, alpha_extra, NO_CLIP, normalize=normalize, signs=signs)[0])
    return np.array([float(penalty_fn(tf.constant(s))) for s in _sign_draws(draws)])


def _assert_within_monte_carlo_error(values, expected):
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert se > 0
    assert abs(values.mean() - expected) < 4 * se, (values.mean(), expected, se)


def _linear(seed=1):
    """h_i = W α_i + c_i."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(D, K)).astype(np.float32)
    c = rng.normal(size=(B, D)).astype(np.float32)
    return w, c, lambda a: tf.matmul(a, w, transpose_b=True) + c


def _nonlinear(seed=2):
    """A smooth per-example map whose norm is far from 1 (so normalisation matters)."""
    rng = np.random.default_rng(seed)
    a_mat = tf.constant(rng.normal(size=(K, D)), tf.float32)
    c = tf.constant(rng.normal(size=(B, D)), tf.float32)
    return lambda a: 3.0 * tf.tanh(tf.matmul(a, a_mat) + c) + tf.square(a[:, :1])


class _Encoder:
    """h = tanh(x(α) @ V), x(α) smooth in α and per-example fixed inputs u; float64 weights."""

    def __init__(self, seed=3, hidden=5):
        rng = np.random.default_rng(seed)
        self.u = tf.constant(rng.normal(size=(B, hidden)), tf.float64)
        self.p = tf.constant(rng.normal(size=(K, hidden)), tf.float64)
        self.v = tf.Variable(0.7 * rng.normal(size=(hidden + K, D)), dtype=tf.float64)

    def __call__(self, alpha):
        a = tf.cast(alpha, tf.float64)
        x = tf.concat([tf.sin(tf.matmul(a, self.p) + self.u), tf.square(a) * self.u[:, :K]], 1)
        return tf.tanh(tf.matmul(x, self.v))


def _per_example_terms(representation_fn, alpha, alpha_extra, signs, normalize=True):
    """penalty_terms with G computed here, to inspect the pre-clip per-example values."""
    a = tf.constant(alpha)
    with tf.GradientTape() as tape:
        tape.watch(a)
        h = tf.cast(representation_fn(a), tf.float32)
        h = tf.math.l2_normalize(h, axis=1) if normalize else h
        s = tf.reduce_sum(signs * h)
    return penalty_terms(tape.gradient(s, a), a, tf.constant(alpha_extra)).numpy()


def test_rademacher_values_mean_and_determinism():
    signs = rademacher(tf.constant([3, 7]), [200, 50]).numpy()
    assert signs.dtype == np.float32 and signs.shape == (200, 50)
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 4 / np.sqrt(signs.size)
    np.testing.assert_array_equal(signs, rademacher(tf.constant([3, 7]), [200, 50]).numpy())
    assert not np.array_equal(signs, rademacher(tf.constant([3, 8]), [200, 50]).numpy())
    assert rademacher([1, 2], [4], dtype=tf.float64).dtype == tf.float64


def test_penalty_terms_shape_and_values():
    rng = np.random.default_rng(4)
    g = rng.normal(size=(B, K))
    alpha, alpha_extra = _problem()
    terms = penalty_terms(tf.constant(g), tf.constant(alpha, tf.float64),
                          tf.constant(alpha_extra, tf.float64)).numpy()
    assert terms.shape == (B,)
    expected = [np.mean([np.dot(g[i], alpha_extra[i, k] - alpha[i]) ** 2 for k in range(N)])
                for i in range(B)]
    np.testing.assert_allclose(terms, expected, rtol=1e-12)


def test_linear_encoder_penalty_for_fixed_signs_is_exact():
    """h = Wα + c, no normalisation: G_i = Wᵀ ε_i, so each draw has a closed form."""
    w, _, fn = _linear()
    alpha, alpha_extra = _problem()
    delta = alpha_extra.astype(np.float64) - alpha[:, None, :]
    for signs in _sign_draws(3, seed=5):
        g = signs.astype(np.float64) @ w  # row i is Wᵀ ε_i
        expected = np.mean(np.einsum("bk,bnk->bn", g, delta) ** 2)
        penalty, h = gradient_penalty(fn, alpha, alpha_extra, NO_CLIP, normalize=False,
                                      signs=signs)
        assert float(penalty) == pytest.approx(expected, rel=1e-5)
        np.testing.assert_allclose(h.numpy(), fn(alpha).numpy(), rtol=1e-6)


def test_linear_encoder_expectation_over_signs_is_closed_form():
    """E_ε penalty = mean_{i,k} ||W (α'_{ik} − α_i)||²."""
    w, _, fn = _linear()
    alpha, alpha_extra = _problem()
    delta = alpha_extra.astype(np.float64) - alpha[:, None, :]
    closed_form = np.mean(np.sum(np.einsum("dk,bnk->bnd", w, delta) ** 2, axis=-1))
    _assert_within_monte_carlo_error(_monte_carlo(fn, alpha, alpha_extra, False), closed_form)


def test_normalised_expectation_over_signs_is_jacobian_norm():
    """E_ε penalty = mean_{i,k} ||J_i δ_{ik}||² with J_i = ∂ĥ_i/∂α_i (batch Jacobian)."""
    fn = _nonlinear()
    alpha, alpha_extra = _problem()
    a = tf.constant(alpha)
    with tf.GradientTape() as tape:
        tape.watch(a)
        h_hat = tf.math.l2_normalize(fn(a), axis=1)
    jac = tape.batch_jacobian(h_hat, a).numpy().astype(np.float64)  # [B, D, K]
    delta = alpha_extra.astype(np.float64) - alpha[:, None, :]
    expected = np.mean(np.sum(np.einsum("bdk,bnk->bnd", jac, delta) ** 2, axis=-1))
    _assert_within_monte_carlo_error(_monte_carlo(fn, alpha, alpha_extra, True), expected)


def test_seed_draws_the_signs_deterministically():
    fn = _nonlinear()
    alpha, alpha_extra = _problem()
    seed = tf.constant([11, 12])
    from_seed, _ = gradient_penalty(fn, alpha, alpha_extra, NO_CLIP, seed=seed)
    explicit, _ = gradient_penalty(fn, alpha, alpha_extra, NO_CLIP,
                                   signs=rademacher(seed, [B, D]))
    assert float(from_seed) == float(explicit)
    unseeded, _ = gradient_penalty(fn, alpha, alpha_extra, NO_CLIP)
    assert np.isfinite(float(unseeded)) and float(unseeded) > 0


def test_gradient_wrt_encoder_weights_matches_finite_differences():
    """Double backprop through G reaches V; compare with central differences in V."""
    enc = _Encoder()
    alpha, alpha_extra = _problem()
    signs = _sign_draws(1, seed=6)[0]
    with tf.GradientTape() as tape:
        penalty, h = gradient_penalty(enc, alpha, alpha_extra, NO_CLIP, signs=signs)
    grad = tape.gradient(penalty, enc.v)
    assert grad is not None
    grad = grad.numpy()
    np.testing.assert_array_equal(h.numpy(), enc(tf.constant(alpha)).numpy())

    v0, eps = enc.v.numpy(), 1e-2
    fd = np.zeros_like(v0)
    for idx in np.ndindex(v0.shape):
        values = []
        for step in (eps, -eps):
            v = v0.copy()
            v[idx] += step
            enc.v.assign(v)
            values.append(float(gradient_penalty(enc, alpha, alpha_extra, NO_CLIP,
                                                 signs=signs)[0]))
        fd[idx] = (values[0] - values[1]) / (2 * eps)
    enc.v.assign(v0)
    scale = np.abs(fd).max()
    assert scale > 1e-3
    np.testing.assert_allclose(grad, fd, rtol=1e-2, atol=2e-3 * scale)


def _penalty_and_grad(enc, alpha, alpha_extra, signs, clip):
    with tf.GradientTape() as tape:
        penalty, _ = gradient_penalty(enc, alpha, alpha_extra, clip, signs=signs)
    grad = tape.gradient(penalty, enc.v)
    return float(penalty), (np.zeros(enc.v.shape) if grad is None else grad.numpy())


def test_clip_applies_to_the_batch_mean():
    """Above U the penalty equals U with zero gradient; below U it is untouched."""
    enc = _Encoder()
    alpha, alpha_extra = _problem()
    signs = _sign_draws(1, seed=6)[0]
    unclipped, grad_free = _penalty_and_grad(enc, alpha, alpha_extra, signs, NO_CLIP)
    terms = _per_example_terms(enc, alpha, alpha_extra, signs)
    assert terms.mean() == pytest.approx(unclipped, rel=1e-5)
    clip = 0.8 * unclipped
    # Some examples lie below U, so clipping before the mean would not give U.
    assert terms.min() < clip

    clipped, grad_clipped = _penalty_and_grad(enc, alpha, alpha_extra, signs, clip)
    assert clipped == np.float32(clip)
    np.testing.assert_array_equal(grad_clipped, 0.0)

    loose, grad_loose = _penalty_and_grad(enc, alpha, alpha_extra, signs, 1.25 * unclipped)
    assert loose == unclipped
    assert np.abs(grad_loose).max() > 1e-3
    np.testing.assert_allclose(grad_loose, grad_free, rtol=1e-6)


def test_rank_validation_names_the_argument():
    fn = _nonlinear()
    alpha, alpha_extra = _problem()
    with pytest.raises(ValueError, match=r"\balpha\b"):
        gradient_penalty(fn, alpha[0], alpha_extra, NO_CLIP)
    with pytest.raises(ValueError, match=r"\balpha\b"):
        gradient_penalty(fn, alpha[:, None, :], alpha_extra, NO_CLIP)
    with pytest.raises(ValueError, match="alpha_extra"):
        gradient_penalty(fn, alpha, alpha_extra[:, 0], NO_CLIP)
    with pytest.raises(ValueError, match="alpha_extra"):
        gradient_penalty(fn, alpha, alpha_extra[None], NO_CLIP)
