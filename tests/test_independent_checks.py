"""Independent checks: InvCLRModel's batch-norm modes, and eval_protocol.evaluate's numbers.

Every expected value here is computed from the SPEC's formulas written out in this file (batch
norm by formula, NT-Xent and the ridge probe in NumPy, the penalty from its definition), never
by calling the function under test. Each check is paired with the value a plausible wrong
implementation would give, to show the tolerance really separates the two.
"""

import math

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from invcl_tf import eval_protocol
from invcl_tf.data import draws, sources
from invcl_tf.models import InvCLRModel
from invcl_tf.models.batch_norm import batch_norm
from invcl_tf.models.resnet import build_encoder
from invcl_tf.penalty import rademacher
from invcl_tf.transforms.base import DifferentiableTransform
from tests.repo_configs import spirograph_cpu

# ---------------------------------------------------------------------------------------------
# A. Batch-norm modes of the train step (SPEC §1)
# ---------------------------------------------------------------------------------------------

B, F, D, P, K, N_EXTRA = 6, 5, 4, 3, 2, 5
TAU = 0.5
CLIP = 1e3  # far above the penalties below, so the clip never binds


class _ScaleShift(DifferentiableTransform):
    """t(x, α) = x·α₀ + α₁ per example on flat inputs ``[B, F]``; differentiable in α."""

    num_params = K
    lo = np.array([0.5, -0.5], np.float32)
    hi = np.array([1.5, 0.5], np.float32)

    def sample_params(self, seed, batch_shape):
        shape = tf.concat([tf.reshape(tf.cast(batch_shape, tf.int32), [-1]), [K]], 0)
        return self.lo + (self.hi - self.lo) * tf.random.stateless_uniform(shape, seed)

    def apply(self, x, alpha, aux):
        del aux
        return x * alpha[:, :1] + alpha[:, 1:]

    def param_variance(self):
        return tf.constant((self.hi - self.lo) ** 2 / 12.0)


def _set_bn(layer, rng, shift):
    """Non-trivial γ, β and moving statistics, so inference mode differs clearly from training."""
    width = layer.gamma.shape[0]
    layer.gamma.assign(rng.uniform(0.5, 2.0, width).astype(np.float32))
    layer.beta.assign(rng.uniform(-1.0, 1.0, width).astype(np.float32))
    layer.moving_mean.assign((shift + rng.normal(size=width)).astype(np.float32))
    layer.moving_variance.assign(rng.uniform(4.0, 9.0, width).astype(np.float32))


def _tiny_model(gp_weight, seed=0, synchronized=True):
    """Encoder Dense(no bias)→BN, head Dense(no bias)→BN, both with non-trivial BN state.

    The BN layers are the project's (``invcl_tf.models.batch_norm.batch_norm``); ``synchronized``
    is its ``sync_bn`` (True: Keras's synchronised layer; False: per-replica statistics).
    """
    rng = np.random.default_rng(seed)
    names = iter(range(2))
    bn = lambda: batch_norm(f"bn_{next(names)}", sync_bn=synchronized)  # noqa: E731
    encoder = keras.Sequential([keras.Input((F,)), keras.layers.Dense(D, use_bias=False), bn()])
    head = keras.Sequential([keras.Input((D,)), keras.layers.Dense(P, use_bias=False), bn()])
    _set_bn(encoder.layers[1], rng, shift=3.0)
    _set_bn(head.layers[1], rng, shift=-2.0)
    model = InvCLRModel(encoder, head, _ScaleShift(), temperature=TAU, gp_weight=gp_weight,
                        gp_clip=CLIP)
    return model


def _tiny_batch(seed=0):
    rng = np.random.default_rng(100 + seed)
    lo, hi = _ScaleShift.lo, _ScaleShift.hi
    x1 = rng.normal(size=(B, F))
    # The views' prepared inputs differ (as two CIFAR crops do), so per-view and 2B batch
    # statistics differ clearly.
    x2 = x1 + rng.normal(1.0, 0.5, size=(B, F))
    return {
        "x1": tf.constant(x1, tf.float32), "x2": tf.constant(x2, tf.float32),
        "alpha1": tf.constant(rng.uniform(lo, hi, (B, K)).astype(np.float32)),
        "alpha2": tf.constant(rng.uniform(lo, hi, (B, K)).astype(np.float32)),
        "alpha_extra": tf.constant(rng.uniform(lo, hi, (B, N_EXTRA, K)).astype(np.float32)),
        "aux1": tf.zeros([B, 0]), "aux2": tf.zeros([B, 0]),
        "sign_seed": tf.tile(tf.constant([[7, 11]], tf.int64), [B, 1]),
    }


def _params(model):
    """The model's weights and BN state as float64 tensors (read before any training call)."""
    out = {}
    for part, net in (("enc", model.encoder), ("head", model.head)):
        dense, bn = net.layers
        out[part] = {"w": dense.kernel, "gamma": bn.gamma, "beta": bn.beta,
                     "mean": bn.moving_mean, "var": bn.moving_variance, "eps": bn.epsilon}
        out[part] = {k: (tf.constant(np.asarray(v, np.float64)) if k != "eps" else float(v))
                     for k, v in out[part].items()}
    return out


def _bn(a, p, batch_stats):
    """Batch norm by formula: per-call batch mean and biased variance, or the moving ones."""
    if batch_stats:
        mean = tf.reduce_mean(a, 0)
        var = tf.reduce_mean(tf.square(a - mean), 0)
    else:
        mean, var = p["mean"], p["var"]
    return p["gamma"] * (a - mean) / tf.sqrt(var + p["eps"]) + p["beta"]


def _reference(params, batch, penalty_batch_stats=True, concat=False):
    """SPEC §1 written out in float64: returns ``(penalty, z1, z2)``.

    ``penalty_batch_stats=False`` is the wrong variant with inference-mode BN in the penalty's
    forward pass (whose h¹ also feeds the head); ``concat=True`` the wrong variant passing both
    views through encoder and head as one batch of 2B.
    """
    f64 = lambda t: tf.cast(t, tf.float64)  # noqa: E731
    x1, x2, a2 = f64(batch["x1"]), f64(batch["x2"]), f64(batch["alpha2"])
    a1 = f64(batch["alpha1"])
    enc, head = params["enc"], params["head"]

    def transform(x, a):
        return x * a[:, :1] + a[:, 1:]

    with tf.GradientTape() as tape:
        tape.watch(a1)
        if concat:
            both = tf.concat([transform(x1, a1), transform(x2, a2)], 0) @ enc["w"]
            h = _bn(both, enc, True)
            h1, h2 = h[:B], h[B:]
        else:
            h1 = _bn(transform(x1, a1) @ enc["w"], enc, penalty_batch_stats)
            h2 = _bn(transform(x2, a2) @ enc["w"], enc, True)
        h_hat = h1 / tf.norm(h1, axis=1, keepdims=True)
        signs = tf.cast(rademacher(batch["sign_seed"][0], [B, D]), tf.float64)
        s = tf.reduce_sum(signs * h_hat)
    grad = tape.gradient(s, a1)  # G = ∂s/∂α¹, [B, K]; kept on any outer tape
    delta = f64(batch["alpha_extra"]) - a1[:, None, :]
    projection = tf.reduce_sum(grad[:, None, :] * delta, axis=2)  # G_i · (α'_ik − α_i)
    penalty = tf.minimum(tf.reduce_mean(tf.square(projection)), CLIP)
    if concat:
        z = _bn(tf.concat([h1, h2], 0) @ head["w"], head, True)
        z1, z2 = z[:B], z[B:]
    else:
        z1 = _bn(h1 @ head["w"], head, True)
        z2 = _bn(h2 @ head["w"], head, True)
    return penalty, z1, z2


def _nt_xent_np(z1, z2, tau=TAU):
    """NT-Xent in NumPy: cosine/τ over 2B×2B, self masked, positive = the other view."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / tau
    np.fill_diagonal(logits, -np.inf)
    n = len(z1)
    positive = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    log_p = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    return float(-np.mean(log_p[np.arange(2 * n), positive]))


def _nt_xent_tf(z1, z2, tau=TAU):
    """The same NT-Xent in TF (float64), for gradients."""
    z = tf.math.l2_normalize(tf.concat([z1, z2], 0), axis=1)
    logits = z @ tf.transpose(z) / tau
    n2 = 2 * B
    logits = tf.where(tf.eye(n2, dtype=tf.bool), tf.constant(-np.inf, tf.float64), logits)
    positive = tf.concat([tf.range(B, n2), tf.range(B)], 0)
    picked = tf.gather(logits, positive, axis=1, batch_dims=1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - picked)


def _reference_values(params, batch, **variant):
    penalty, z1, z2 = _reference(params, batch, **variant)
    return float(penalty), _nt_xent_np(z1.numpy(), z2.numpy())


# The model runs in float32 on O(1) values; its losses agree with the float64 reference to
# ~1e-6 relative. rtol 1e-4 leaves ample margin; a wrong variant must miss by 100 times that
# (they miss by 3% to over 100% on these batches).
RTOL = 1e-4
WRONG_GAP = 100 * RTOL


def _far(value, reference):
    return abs(value - reference) > WRONG_GAP * abs(reference)


def test_penalty_forward_pass_uses_training_mode_batch_statistics():
    """Catches a penalty computed with BN in inference mode (moving statistics)."""
    model = _tiny_model(gp_weight=0.5)
    batch = _tiny_batch()
    params = _params(model)  # before compute_losses updates the moving statistics
    losses = model.compute_losses(batch, training=True)
    penalty, contrastive = _reference_values(params, batch)
    np.testing.assert_allclose(float(losses["penalty"]), penalty, rtol=RTOL)
    np.testing.assert_allclose(float(losses["contrastive_loss"]), contrastive, rtol=RTOL)
    np.testing.assert_allclose(float(losses["loss"]), contrastive + 0.5 * penalty, rtol=RTOL)
    assert 1e-3 < penalty < CLIP  # non-degenerate and unclipped
    wrong_penalty, wrong_contrastive = _reference_values(params, batch, penalty_batch_stats=False)
    assert _far(wrong_penalty, penalty), (wrong_penalty, penalty)
    assert _far(wrong_contrastive, contrastive), (wrong_contrastive, contrastive)


def test_views_go_through_encoder_and_head_in_separate_calls():
    """Catches both views encoded (and projected) as one concatenated batch of 2B."""
    for seed in (0, 1):
        model = _tiny_model(gp_weight=0.5, seed=seed)
        batch = _tiny_batch(seed)
        params = _params(model)
        losses = model.compute_losses(batch, training=True)
        penalty, contrastive = _reference_values(params, batch)
        np.testing.assert_allclose(float(losses["contrastive_loss"]), contrastive, rtol=RTOL)
        np.testing.assert_allclose(float(losses["penalty"]), penalty, rtol=RTOL)
        wrong_penalty, wrong_contrastive = _reference_values(params, batch, concat=True)
        assert _far(wrong_contrastive, contrastive), (wrong_contrastive, contrastive)
        assert _far(wrong_penalty, penalty), (wrong_penalty, penalty)


@pytest.mark.parametrize("synchronized", [True, False], ids=["sync_bn", "local_bn"])
def test_one_train_step_moves_the_weights_by_the_reference_gradient(synchronized):
    """One SGD step equals −lr·∇(NT-Xent + λ·GP) of the reference, double backprop included.

    Catches a stop-gradient on G (no double backpropagation), a missing λ, or any of the BN
    mistakes above, since each changes the update by far more than the tolerance. The
    ``local_bn`` case also catches wrong second derivatives through batch norm: the penalty's
    training gradient differentiates ∂BN/∂input once more, so the batch variance's dependence
    on the batch mean must be kept. Keras's own unsynchronised BN takes its moments from
    ``tf.nn.moments``, whose variance stops the gradient through the mean (first derivatives
    exact, second derivatives not): with it this case fails, hence ``LocalBatchNormalization``.
    """
    lr, gp_weight = 0.1, 1.0
    model = _tiny_model(gp_weight=gp_weight, synchronized=synchronized)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    batch = _tiny_batch()
    params = _params(model)
    trainable = {("enc", "w"): model.encoder.layers[0].kernel,
                 ("enc", "gamma"): model.encoder.layers[1].gamma,
                 ("enc", "beta"): model.encoder.layers[1].beta,
                 ("head", "w"): model.head.layers[0].kernel,
                 ("head", "gamma"): model.head.layers[1].gamma,
                 ("head", "beta"): model.head.layers[1].beta}
    assert {id(v) for v in trainable.values()} == {id(v) for v in model.trainable_variables}
    before = {key: v.numpy().astype(np.float64) for key, v in trainable.items()}

    watched = [params[part][name] for part, name in trainable]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(watched)
        penalty, z1, z2 = _reference(params, batch)
        contrastive = _nt_xent_tf(z1, z2)
    np.testing.assert_allclose(float(contrastive), _nt_xent_np(z1.numpy(), z2.numpy()),
                               rtol=1e-12)  # the TF and NumPy references agree
    zero = tf.UnconnectedGradients.ZERO  # the penalty does not reach the head
    grad_c = tape.gradient(contrastive, watched, unconnected_gradients=zero)
    grad_p = tape.gradient(penalty, watched, unconnected_gradients=zero)

    model.train_step(batch)
    for (key, var), gc, gp in zip(trainable.items(), grad_c, grad_p):
        moved = var.numpy().astype(np.float64) - before[key]
        expected = -lr * (gc.numpy() + gp_weight * gp.numpy())
        # float32 weights moved by up to ~2: float32 rounding is ~1e-6 relative (observed
        # agreement ~1e-7 with synchronised BN); wrong second derivatives miss by > 0.2%.
        np.testing.assert_allclose(moved, expected, rtol=1e-3, atol=1e-5, err_msg=str(key))
    # The penalty's own gradient (through G) is a visible part of the encoder's update.
    penalty_part = lr * gp_weight * np.abs(grad_p[0].numpy()).max()
    assert penalty_part > 1e-3, penalty_part


# ---------------------------------------------------------------------------------------------
# B. The evaluation protocol (SPEC §5), reproduced outside eval_protocol
# ---------------------------------------------------------------------------------------------

PASSES = (1, 2, 3)
# Hand-computed from SPEC §3's nuisance ranges: h U(0.5, 2.5) has variance 2²/12, the five
# colours (width 0.6 each) 0.6²/12; their mean is (4 + 5·0.36) / 72.
SPIROGRAPH_NUISANCE_PRIOR_VARIANCE = (4.0 + 5 * 0.36) / 72.0  # 0.080555...


def _eval_config(probe_targets="fresh"):
    config = spirograph_cpu.get_config("tiny")
    config.dataset.train_size = 128  # probe-train 64 > D = 32 features: a well-posed ridge
    config.dataset.test_size = 64    # test 32
    config.eval.num_passes = PASSES
    # 24 splits probe 64 = 24 + 24 + 16 and test 32 = 24 + 8: the per-batch seeds and the
    # batch-size-weighted penalty average are both exercised.
    config.eval.batch_size = 24
    config.eval.variance_copies = 2
    config.eval.probe_targets = probe_targets
    return config


@pytest.fixture(scope="module")
def evaluated():
    """An untrained quarter-size ResNet evaluated once per probe-target mode."""
    keras.utils.set_random_seed(2024)
    encoder = build_encoder("resnet_tiny", width_multiplier=0.5)
    runs = {}
    for mode in ("fresh", "pretraining"):
        config = _eval_config(mode)
        data = sources.load(config)
        passes = PASSES if mode == "fresh" else (1,)
        runs[mode] = (config, data, eval_protocol.evaluate(encoder, data, config, passes))
    return encoder, runs


def _encode_views(encoder, transform, x, pass_seed, batch_size):
    """One random view per input with the documented seeds: batch i uses fold(pass_seed, i)."""
    hs, alphas = [], []
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb = tf.constant(x[start:start + batch_size])
        xv, alpha, aux = draws.random_view(transform, xb, draws.fold(pass_seed, i))
        hs.append(encoder(transform.apply(xv, alpha, aux), training=False).numpy())
        alphas.append(alpha.numpy())
    return np.concatenate(hs).astype(np.float64), np.concatenate(alphas).astype(np.float64)


def _passes(encoder, config, data, probe_x, test_x, count):
    """``[(probe_h, probe_alpha, test_h, test_alpha)]`` for passes 1..count."""
    seed = draws.fold(config.seed, draws.STREAM_EVAL)
    size = config.eval.batch_size
    out = []
    for p in range(1, count + 1):
        out.append(_encode_views(encoder, data.transform, probe_x, draws.fold(seed, 0, p), size)
                   + _encode_views(encoder, data.transform, test_x, draws.fold(seed, 1, p),
                                   size))
    return out


def _ridge_predict(train_x, train_y, test_x, l2):
    """SPEC §5's ridge probe via lstsq on [Xc; sqrt(k·N·l2)·I] W = [yc; 0], bias unpenalised."""
    n, d = train_x.shape
    k = train_y.shape[1]
    x_mean, y_mean = train_x.mean(0), train_y.mean(0)
    a = np.vstack([train_x - x_mean, math.sqrt(k * n * l2) * np.eye(d)])
    b = np.vstack([train_y - y_mean, np.zeros((d, k))])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    return (test_x - x_mean) @ w + y_mean


def _probe_mse(probe_h, probe_y, test_h, test_y, l2):
    """``(overall MSE, per-target MSE)`` of the ridge probe fitted on probe_h → probe_y."""
    err = (_ridge_predict(probe_h, probe_y, test_h, l2) - test_y) ** 2
    return float(err.mean()), err.mean(0)


# The features are float32 and reproduced by the same ops (eager here, traced there), so they
# agree to float32 rounding (~1e-7 relative); the ridge solves are float64 on a well-posed
# system (N = 64 > D = 32, condition number of Xc ~ 3e3), so the scores agree to ~1e-6 relative
# (observed). rtol 1e-4 leaves margin; every wrong variant below misses by more than 1%.
EVAL_RTOL = 1e-4


def _far_eval(value, reference):
    return abs(value - reference) > 100 * EVAL_RTOL * abs(reference)


def test_feature_averaged_probe_mse_reuses_the_first_m_views(evaluated):
    """MSE at each M from the mean of passes 1..M, probe and test, against a NumPy ridge.

    Catches fresh views per M, a wrong pass/split/batch seed, averaging the probe but not the
    test features (or vice versa), or a probe objective other than SPEC §5's.
    """
    encoder, runs = evaluated
    config, data, results = runs["fresh"]
    n_probe, n_test = results["num_probe_train"], results["num_test"]
    probe_x, test_x = data.probe_x[:n_probe], data.test_x[:n_test]
    probe_y, test_y = probe_x.astype(np.float64), test_x.astype(np.float64)  # targets = inputs
    passes = _passes(encoder, config, data, probe_x, test_x, max(PASSES))
    l2 = config.eval.probe_l2
    mses = {}
    for m in PASSES:
        probe_h = np.mean([p[0] for p in passes[:m]], axis=0)
        test_h = np.mean([p[2] for p in passes[:m]], axis=0)
        mses[m], per_target = _probe_mse(probe_h, probe_y, test_h, test_y, l2)
        np.testing.assert_allclose(results["mse"][str(m)], mses[m], rtol=EVAL_RTOL)
        reported = results["mse_per_target"][str(m)]
        assert list(reported) == ["m", "b", "sigma", "rfore"]
        np.testing.assert_allclose([reported[t] for t in reported], per_target, rtol=EVAL_RTOL)
    # The three M give distinguishable numbers, so a scheme mixing them up would fail above.
    assert _far_eval(mses[2], mses[1]) and _far_eval(mses[3], mses[2])
    # Off by one pass (M = 1 from pass 2) or averaging only the probe features: both far off.
    assert _far_eval(_probe_mse(passes[1][0], probe_y, passes[1][2], test_y, l2)[0], mses[1])
    probe_only = _probe_mse(np.mean([p[0] for p in passes[:2]], axis=0), probe_y, passes[0][2],
                            test_y, l2)[0]
    assert _far_eval(probe_only, mses[2])


def test_nuisance_predictability_against_lstsq_and_the_prior_variance(evaluated):
    """Nuisance MSE: first-pass probe features → their α, l2 = eval.nuisance_l2, scored on the
    first test pass; baseline: the prior variance of SPEC §3's ranges, computed by hand.

    Catches fitting to another view's α, another l2 or pass, and a wrong baseline.
    """
    encoder, runs = evaluated
    config, data, results = runs["fresh"]
    n_probe, n_test = results["num_probe_train"], results["num_test"]
    passes = _passes(encoder, config, data, data.probe_x[:n_probe], data.test_x[:n_test], 2)
    probe_h, probe_alpha, test_h, test_alpha = passes[0]
    nuisance, _ = _probe_mse(probe_h, probe_alpha, test_h, test_alpha, config.eval.nuisance_l2)
    np.testing.assert_allclose(results["nuisance_mse"], nuisance, rtol=EVAL_RTOL)
    # float32 param_variance: ~1e-7 relative.
    np.testing.assert_allclose(results["nuisance_mse_baseline"],
                               SPIROGRAPH_NUISANCE_PRIOR_VARIANCE, rtol=1e-6)
    # The α of pass 2's views do not belong to pass 1's features: a clearly different number.
    mismatched, _ = _probe_mse(probe_h, passes[1][1], test_h, test_alpha,
                               config.eval.nuisance_l2)
    assert _far_eval(mismatched, nuisance)


def _penalty_by_definition(encoder, transform, x, num_extra, batch_size, seed, training):
    """SPEC §1's estimator, unclipped, averaged over x weighted by batch size (NumPy algebra)."""
    base = draws.fold(seed, 2)
    dim = encoder.output_shape[-1]
    total = 0.0
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb = tf.constant(x[start:start + batch_size])
        batch_seed = draws.fold(base, i)
        xv, alpha, aux = draws.random_view(transform, xb, batch_seed)
        extra = transform.sample_params(draws.fold(batch_seed, 3), [len(xb), num_extra])
        signs = rademacher(draws.fold(batch_seed, 4), [len(xb), dim])
        with tf.GradientTape() as tape:
            tape.watch(alpha)
            h = encoder(transform.apply(xv, alpha, aux), training=training)
            s = tf.reduce_sum(signs * h / tf.norm(h, axis=1, keepdims=True))
        grad = tape.gradient(s, alpha).numpy().astype(np.float64)
        delta = extra.numpy().astype(np.float64) - alpha.numpy()[:, None, :]
        total += np.mean(np.einsum("bk,bnk->bn", grad, delta) ** 2) * len(xb)
    return total / len(x)


def test_penalty_estimate_is_the_inference_mode_estimator(evaluated):
    """Catches other seeds, an unweighted batch mean, a clip, or training-mode batch norm."""
    encoder, runs = evaluated
    config, data, results = runs["fresh"]
    test_x = data.test_x[:results["num_test"]]
    seed = draws.fold(config.seed, draws.STREAM_EVAL)
    args = (data.transform, test_x, config.gp.num_extra, config.eval.batch_size, seed)
    expected = _penalty_by_definition(encoder, *args, training=False)
    # float32 gradients through the same network: ~1e-6 relative.
    np.testing.assert_allclose(results["penalty_estimate"], expected, rtol=EVAL_RTOL)
    # Training mode on a copy (it would move the shared encoder's moving statistics).
    copy = keras.models.clone_model(encoder)
    copy.set_weights(encoder.get_weights())
    assert _far_eval(_penalty_by_definition(copy, *args, training=True), expected)


def test_probe_split_sizes_and_which_targets_fit_the_probe(evaluated):
    """Sizes are int(size · fraction); "fresh" probe targets are their own stream, disjoint
    from the pretraining targets; "pretraining" fits on data.train_x[:n].

    Checked through the reproduced M = 1 probe MSE, which only the right inputs give.
    """
    encoder, runs = evaluated
    for mode in ("fresh", "pretraining"):
        config, data, results = runs[mode]
        n_probe = int(config.dataset.train_size * config.eval.probe_fraction)
        n_test = int(config.dataset.test_size * config.eval.test_fraction)
        assert (results["num_probe_train"], results["num_test"]) == (n_probe, n_test) == (64, 32)
        test_x = data.test_x[:n_test]
        if mode == "fresh":
            right = sources.spirograph_probe_targets(config.seed, n_probe)
            wrong = np.asarray(data.train_x)[:n_probe]
            # No fresh probe target is a pretraining target.
            assert not (right[:, None, :] == np.asarray(data.train_x)[None, :, :]).all(-1).any()
        else:
            assert data.probe_x is None
            right = np.asarray(data.train_x)[:n_probe]
            wrong = sources.spirograph_probe_targets(config.seed, n_probe)
        mse = {}
        for name, probe_x in (("right", right), ("wrong", wrong)):
            (probe_h, _, test_h, _), = _passes(encoder, config, data, probe_x, test_x, 1)
            mse[name], _ = _probe_mse(probe_h, probe_x.astype(np.float64), test_h,
                                      test_x.astype(np.float64), config.eval.probe_l2)
        np.testing.assert_allclose(results["mse"]["1"], mse["right"], rtol=EVAL_RTOL)
        assert _far_eval(mse["wrong"], mse["right"]), mode
