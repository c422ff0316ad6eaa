"""NT-Xent against a naive float64 NumPy formula, its gradients, and its replica split."""


import numpy as np
import pytest
import tensorflow as tf

from invcl_tf.losses import nt_xent, nt_xent_against
from tests.numpy_references import numeric_grad as _numeric_grad
from tests.numpy_references import reference_nt_xent as _reference_nt_xent

CASES = [(1, 3, 0.5), (2, 4, 0.1), (3, 5, 1.0), (5, 8, 0.5), (8, 16, 0.1)]


def _views(b, p, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, p)), rng.normal(size=(b, p))


@pytest.mark.parametrize("b,p,temperature", CASES)
def test_nt_xent_matches_naive_formula(b, p, temperature):
    """NumPy float64 inputs and tf float32 tensors both agree with the loop formula."""
    z1, z2 = _views(b, p)
    expected = _reference_nt_xent(z1, z2, temperature)
    from_numpy = float(nt_xent(z1, z2, temperature))
    from_tf = float(nt_xent(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32),
                            temperature))
    assert from_numpy == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert from_tf == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_nt_xent_default_temperature_is_half():
    z1, z2 = _views(4, 6, seed=3)
    assert float(nt_xent(z1, z2)) == pytest.approx(_reference_nt_xent(z1, z2, 0.5), rel=1e-5)


@pytest.mark.parametrize("b,p,temperature", [(2, 3, 0.5), (4, 5, 0.1), (3, 4, 1.0)])
def test_nt_xent_gradient_matches_finite_differences(b, p, temperature):
    """d loss / d z1 from autodiff vs central differences of the float64 reference and of
    the (float32-internal) function itself."""
    z1, z2 = _views(b, p, seed=1)
    z1_var = tf.Variable(z1, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = nt_xent(z1_var, tf.constant(z2, tf.float64), temperature)
    grad = tape.gradient(loss, z1_var).numpy()
    assert grad.dtype == np.float64

    fd_reference = _numeric_grad(lambda x: _reference_nt_xent(x, z2, temperature), z1, 1e-6)
    np.testing.assert_allclose(grad, fd_reference, rtol=1e-4, atol=1e-5)

    fd_own = _numeric_grad(lambda x: float(nt_xent(x, z2, temperature)), z1, 1e-3)
    np.testing.assert_allclose(grad, fd_own, rtol=1e-2, atol=2e-3)


@pytest.mark.parametrize("replicas,b,temperature", [(2, 3, 0.5), (2, 4, 0.1), (4, 2, 1.0)])
def test_replica_split_averages_to_global_loss_and_gradient(replicas, b, temperature):
    """Mean over replicas (offset r·b, keys = global batch) of the local losses equals the
    global loss; the mean of their gradients w.r.t. the global z equals the global gradient."""
    z1, z2 = _views(replicas * b, 6, seed=2)
    g1, g2 = tf.Variable(z1, dtype=tf.float32), tf.Variable(z2, dtype=tf.float32)
    with tf.GradientTape() as tape:
        global_loss = nt_xent(g1, g2, temperature)
    global_grads = tape.gradient(global_loss, [g1, g2])

    local_losses, local_grads = [], []
    for r in range(replicas):
        with tf.GradientTape() as tape:
            lo, hi = r * b, (r + 1) * b
            loss = nt_xent_against(g1[lo:hi], g2[lo:hi], g1, g2, lo, temperature)
        local_losses.append(float(loss))
        local_grads.append([g.numpy() for g in tape.gradient(loss, [g1, g2])])

    assert np.mean(local_losses) == pytest.approx(float(global_loss), abs=1e-6)
    assert float(global_loss) == pytest.approx(_reference_nt_xent(z1, z2, temperature),
                                               rel=1e-5)
    for view in range(2):
        mean_grad = np.mean([g[view] for g in local_grads], axis=0)
        np.testing.assert_allclose(mean_grad, global_grads[view].numpy(), atol=1e-6)


def test_local_loss_matches_naive_per_anchor_mean():
    """One replica's loss is the reference loss restricted to its own 2b anchors."""
    b, replicas, temperature = 2, 3, 0.5
    z1, z2 = _views(b * replicas, 4, seed=4)
    n = 2 * b * replicas
    z = np.concatenate([z1, z2], 0)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = zn @ zn.T / temperature
    np.fill_diagonal(logits, -np.inf)
    log_prob = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    half = n // 2
    per_anchor = -log_prob[np.arange(n), (np.arange(n) + half) % n]
    offset = b  # the middle replica
    rows = list(range(offset, offset + b)) + list(range(half + offset, half + offset + b))
    local = nt_xent_against(z1[offset:offset + b], z2[offset:offset + b], z1, z2, offset,
                            temperature)
    assert float(local) == pytest.approx(per_anchor[rows].mean(), rel=1e-5)


def test_nt_xent_is_invariant_to_the_scale_of_each_projection():
    z1, z2 = _views(4, 5, seed=5)
    rng = np.random.default_rng(6)
    s1 = rng.uniform(0.01, 50.0, size=(4, 1))
    s2 = rng.uniform(0.01, 50.0, size=(4, 1))
    base = float(nt_xent(z1, z2, 0.5))
    assert float(nt_xent(z1 * s1, z2 * s2, 0.5)) == pytest.approx(base, rel=1e-5)
    assert float(nt_xent(1e3 * z1, 1e3 * z2, 0.5)) == pytest.approx(base, rel=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_non_positive_temperature_raises(temperature):
    z1, z2 = _views(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z1, z2, temperature)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_against(z1, z2, z1, z2, 0, temperature)
